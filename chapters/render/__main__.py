"""Build the book: every chapter executed as a notebook, in Chinese and English, and a static site.

    python -m chapters.render                       every chapter, both languages, into out/book/
    python -m chapters.render --out site/ --fast    the same with fewer steps (minutes, not a quarter hour)
    python -m chapters.render --only 02 05          just these chapters (the rest of an earlier build stays)
    python -m chapters.render --lang zh             just one language (zh 中文, en English)
    python -m chapters.render --jobs 2              the two languages side by side (two kernels)

It writes OUT/index.html (the front page), OUT/zh/ and OUT/en/ (an index and one page per chapter,
with the language switch, the checks passed and the figures inline; nothing loaded from the network)
and OUT/notebooks/<lang>/chNN_name.ipynb (the executed notebooks, to open in Jupyter or VS Code).
Needs the book extra: pip install -r requirements-book.txt (jupytext, nbclient, nbconvert, ipykernel).

OUT must be new, empty or an earlier build (it has the book.json this command writes); anything else
is refused unless --force. A chapter that fails still gets its page, marked failed, and the command
then exits with status 1; bad options exit with status 2, before anything runs.
"""
from __future__ import annotations

import argparse
import datetime
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chapters.__main__ import CHAPTERS_DIR, find_chapters, select
from chapters.options import LANGS, default_lang, parse_count, parse_lang, parse_seconds, tr
from chapters.render import build


def _missing_tools() -> list[str]:
    import importlib.util

    return [m for m in ("jupytext", "nbclient", "nbconvert", "nbformat", "ipykernel", "jinja2")
            if importlib.util.find_spec(m) is None]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chapters.render", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("out/book"), help="the site's folder (default out/book)")
    ap.add_argument("--fast", action="store_true", help="run the chapters with --fast (fewer steps)")
    ap.add_argument("--only", nargs="+", metavar="NN", help="build only these chapter numbers, e.g. --only 02 05")
    ap.add_argument("--lang", nargs="+", metavar="|".join(LANGS), default=None,
                    help="the languages to build (default: all, zh en)")
    ap.add_argument("--force", action="store_true", help="build into a non-empty folder that is not an earlier build")
    ap.add_argument("--dir", type=Path, default=CHAPTERS_DIR, help="where the chNN_*.py files are (default: chapters/)")
    ap.add_argument("--timeout", default=None, metavar="SECONDS",
                    help="seconds allowed per notebook cell (a finite number > 0; default 1200)")
    ap.add_argument("--jobs", default="1", metavar="N", help="languages built at the same time, one kernel each (default 1)")
    ap.add_argument("--work", type=Path, default=None,
                    help="folder for what the chapters save (figure files, training runs, ch08's model for ch10); "
                         "default out/book-work/ in the repository")
    args = ap.parse_args(argv)

    try:
        ui = default_lang()
    except ValueError as e:
        ap.error(str(e))
    try:
        langs = list(dict.fromkeys(parse_lang("--lang", x) for x in (args.lang or LANGS)))
        timeout = 1200.0 if args.timeout is None else parse_seconds("--timeout", args.timeout)
        jobs = parse_count("--jobs", args.jobs, 1)
    except ValueError as e:
        ap.error(str(e))
    if not args.dir.is_dir():
        ap.error(f"--dir: expected a folder of chNN_*.py chapters, received {args.dir}")
    try:
        all_chapters = find_chapters(args.dir)
        chapters = select(all_chapters, args.only)
    except ValueError as e:
        ap.error(str(e))
    if not chapters:
        ap.error(f"no chNN_*.py chapters found in {args.dir}")
    missing = _missing_tools()
    if missing:
        ap.error(tr(ui, f"缺少构建工具 {', '.join(missing)}：请先运行 {build.REQUIREMENTS_HINT}",
                    f"the book's tools are missing ({', '.join(missing)}): {build.REQUIREMENTS_HINT}"))
    out = args.out
    try:
        manifest = build.prepare_out(out, args.force)
    except build.BuildError as e:
        ap.error(str(e))

    work = args.work if args.work is not None else build.REPO_ROOT / "out" / "book-work"
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        ap.error(f"--work: expected a writable folder, received {str(work)!r}: {e.strerror or e}")
    lock = threading.Lock()
    results: list[tuple[object, build.Result]] = []
    build.write_manifest(out, manifest)  # from now on the folder is recognised as a build
    t_start = time.perf_counter()

    def run_language(lang: str) -> None:
        for path in chapters:
            with lock:
                print(tr(ui, f"[{lang}] {path.stem} 执行中…", f"[{lang}] {path.stem} running…"), flush=True)
            nb, result = build.execute_chapter(path, lang, args.fast, work, timeout)
            build.write_notebook(nb, out / "notebooks" / lang / f"{path.stem}.ipynb")
            with lock:
                results.append((nb, result))
                manifest["chapters"].setdefault(path.stem, {})[lang] = result.row()
                build.write_manifest(out, manifest)
                state = tr(ui, "通过", "passed") if result.status == "passed" else tr(ui, "失败", "FAILED")
                print(tr(ui, f"[{lang}] {path.stem}：{state}（{result.checks} 项检查，{result.figures} 张图，{result.seconds:g} 秒）",
                         f"[{lang}] {path.stem}: {state} ({result.checks} checks, {result.figures} figures, {result.seconds:g} s)")
                      + (f"\n    {result.error}" if result.error else ""), flush=True)

    if jobs > 1 and len(langs) > 1:
        with ThreadPoolExecutor(max_workers=min(jobs, len(langs))) as pool:
            for f in [pool.submit(run_language, lang) for lang in langs]:
                f.result()
    else:
        for lang in langs:
            run_language(lang)

    t_pages = time.perf_counter()
    font = build.copy_font(out)
    css = build.book_css(f"../assets/{build.FONT_ASSET}" if font else None)
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
    footer = f"python -m chapters.render{' --fast' if args.fast else ''} · {stamp}"
    order = [p.stem for p in all_chapters]
    for nb, result in sorted(results, key=lambda r: (r[1].lang, order.index(r[1].chapter))):
        lang, i = result.lang, order.index(result.chapter)

        def page(stem: str, lang_: str) -> bool:
            return lang_ in manifest["chapters"].get(stem, {})

        nav = {"switch": build._switch(lang, lambda other: f"../{other}/{result.chapter}.html"
                                       if page(result.chapter, other) else f"../{other}/index.html")}
        for key, j in (("prev", i - 1), ("next", i + 1)):
            if 0 <= j < len(order) and page(order[j], lang):
                entry = manifest["chapters"][order[j]][lang]
                nav[key] = {"href": f"{order[j]}.html", "title": entry.get("title", order[j]),
                            "label": build._short(entry.get("title", order[j]))}
        build.export_page(nb, result, out, css, nav, footer)
    build.write_indexes(out, manifest, all_chapters, args.dir, css, footer)
    seconds_pages = time.perf_counter() - t_pages

    failed = [r for _, r in results if r.status != "passed"]
    total = time.perf_counter() - t_start
    print(tr(ui, f"\n{len(results) - len(failed)}/{len(results)} 个笔记本通过；网站：{out / 'index.html'}"
                 f"（共 {total:.0f} 秒，其中生成网页 {seconds_pages:.0f} 秒）",
             f"\n{len(results) - len(failed)}/{len(results)} notebooks passed; the site: {out / 'index.html'} "
             f"({total:.0f} s, of which {seconds_pages:.0f} s writing the pages)"))
    for r in failed:
        print(tr(ui, f"  失败：[{r.lang}] {r.chapter}：{r.error}", f"  failed: [{r.lang}] {r.chapter}: {r.error}"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
