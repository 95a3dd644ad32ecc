"""Build the book: execute each chapter as a notebook in each language, write the executed notebooks
and a static HTML site. The command line is ``python -m chapters.render`` (chapters/render/__main__.py);
docs/book.md documents it.

    out/                                 (default out/book)
      book.json                          what was built: marks the folder as a build, read by the next one
      index.html                         the front page: one link per language
      zh/index.html, en/index.html       the chapters, article sections, checks passed, status; language switch
      zh/ch02_attention.html, …          one page per chapter and language (nbconvert, lab template, offline)
      notebooks/zh/ch02_attention.ipynb  the executed notebooks, outputs and figures inline
      assets/NotoSansSC-Regular.otf      the CJK web font for readers without one (when the wheel is installed)

The ecosystem does the work: jupytext reads the percent-format chapters, nbclient executes them in
a Jupyter kernel (ipykernel) with CHAPTERS_LANG / CHAPTERS_FAST / CHAPTERS_OUT set, nbformat writes
the notebooks and nbconvert's HTMLExporter renders the pages (template chapters/render/templates/book,
which extends nbconvert's lab template and loads nothing from the network). Markdown cells carry
``lang="zh"`` or ``lang="en"`` in their percent-format header; a language's notebook keeps its own
markdown cells, the cells without a lang and every code cell.
"""
from __future__ import annotations

import copy
import datetime
import html
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from chapters.options import LANG_NAMES, LANGS, tr
from chapters.render import cells as cellmod

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = Path(__file__).with_name("templates")
MANIFEST = "book.json"
GENERATOR = "chapters.render"
SUMMARY_PREFIX = "@@CHAPTER "  # printed by chapters.book.Chapter.done()
BOOTSTRAP_TAG = "book-bootstrap"
HTML_LANG = {"zh": "zh-CN", "en": "en"}
FONT_ASSET = "NotoSansSC-Regular.otf"
REQUIREMENTS_HINT = "pip install -r requirements-book.txt"

WORDS = {
    "zh": {
        "home": "首页", "index": "目录", "notebook": "下载笔记本 (.ipynb)", "chapters": "章节",
        "chapter": "章节", "section": "文章章节", "status": "状态", "checks": "通过的检查", "figures": "图",
        "time": "用时", "passed": "通过", "failed": "构建失败", "missing": "未构建",
        "failed_title": "本章在构建时失败", "article_map": "文章与章节对照",
        "article_map_lead": "原文各节在本仓库中对应的库代码和章节（取自 README.md）。",
        "title": "从零实现 BERT 与 GPT：配套教程",
        "lead": "每一章从第一性原理出发，用纯 PyTorch 实现文章《从零开始大模型开发与微调：更多的预训练模型》中的一个概念，"
                "并与 PyTorch 内置实现、float64 下的 gradcheck 或解析解逐一核对。下面的页面是执行后的笔记本：输出和图都是这次构建时算出来的。",
        "fast": "快速模式", "default": "默认模式", "figure": "图",
    },
    "en": {
        "home": "Home", "index": "Contents", "notebook": "Download the notebook (.ipynb)", "chapters": "Chapters",
        "chapter": "chapter", "section": "article §", "status": "status", "checks": "checks passed", "figures": "figures",
        "time": "time", "passed": "passed", "failed": "build failed", "missing": "not built",
        "failed_title": "This chapter failed during the build", "article_map": "The article, section by section",
        "article_map_lead": "Where each section of the article is built: the library code and the chapter (from README.md).",
        "title": "BERT and GPT from scratch: the chapters",
        "lead": "Each chapter builds one idea of the Chinese article (从零开始大模型开发与微调：更多的预训练模型) from first "
                "principles in plain PyTorch and checks it against a PyTorch built-in, gradcheck in float64 or a closed "
                "form. These pages are the executed notebooks: every output and figure was computed by this build.",
        "fast": "fast mode", "default": "default mode", "figure": "figure",
    },
}


class BuildError(Exception):
    """A problem with the options or the output folder (exit status 2)."""


# ----------------------------------------------------------------------------- the output folder


def load_manifest(out: Path) -> dict | None:
    """The earlier build's book.json, or None when ``out`` holds none (or not one of ours)."""
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("generator") != GENERATOR or not isinstance(data.get("chapters"), dict):
        return None
    return data


def prepare_out(out: Path, force: bool) -> dict:
    """Check ``out`` (refusing a non-empty folder that is not an earlier build unless ``force``),
    create it, and return the manifest to update (the earlier build's, or a new one)."""
    if out.exists() and not out.is_dir():
        raise BuildError(f"--out: expected a folder, received {str(out)!r}: it is a file")
    manifest = load_manifest(out) if out.is_dir() else None
    if out.is_dir() and manifest is None and any(out.iterdir()) and not force:
        raise BuildError(f"--out: {str(out)!r} is not empty and is not an earlier build of the book (no {MANIFEST} "
                         f"written by {GENERATOR}); choose an empty or new folder, or pass --force to build into it anyway")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise BuildError(f"--out: expected a writable folder, received {str(out)!r}: {e.strerror or e}") from None
    return manifest or {"generator": GENERATOR, "version": 1, "chapters": {}}


def write_manifest(out: Path, manifest: dict) -> None:
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out / MANIFEST)


# ----------------------------------------------------------------------------- notebooks


def chapter_notebook(path: Path, lang: str):
    """The chapter as a notebook in ``lang``: its markdown cells in that language (and those with
    no lang), every code cell; a first cell defining ``__file__`` when the chapter still calls
    ``Chapter(__file__)`` (Jupyter does not define it), tagged so the HTML page leaves it out."""
    import jupytext
    import nbformat

    nb = jupytext.read(path, fmt="py:percent")
    nb.cells = [c for c in nb.cells if c.metadata.get("lang") in (None, lang)]
    title = cellmod.title(cellmod.read_cells(path), lang) or path.stem
    if any(c.cell_type == "code" and "Chapter(__file__)" in c.source for c in nb.cells):
        rel = path.resolve().relative_to(REPO_ROOT).as_posix() if path.resolve().is_relative_to(REPO_ROOT) else path.name
        boot = nbformat.v4.new_code_cell(f'__file__ = "{rel}"  # Jupyter does not define __file__; the chapter calls Chapter(__file__)',
                                         metadata={"tags": [BOOTSTRAP_TAG]})
        nb.cells.insert(0, boot)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{path.stem[:40]}-{lang}-{i}"
        if cell.cell_type == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
                   "language_info": {"name": "python"}, "title": title,
                   "book": {"chapter": path.stem, "lang": lang}}
    return nb


def _scan_outputs(nb) -> tuple[dict | None, list[str], int]:
    """The chapter's @@CHAPTER summary (removed from the outputs), its ✓ lines and its figure count."""
    summary, checks, figures = None, [], 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                lines = []
                for line in output.get("text", "").splitlines(keepends=True):
                    if line.startswith(SUMMARY_PREFIX):
                        try:
                            summary = json.loads(line[len(SUMMARY_PREFIX):])
                        except ValueError:
                            pass
                        continue
                    if line.startswith("✓ "):
                        checks.append(line[2:].rstrip("\n"))
                    lines.append(line)
                output["text"] = "".join(lines)
                if not output["text"]:
                    continue
            elif "image/png" in output.get("data", {}):
                figures += 1
            kept.append(output)
        cell["outputs"] = kept
    return summary, checks, figures


def _error_of(nb) -> tuple[int | None, str]:
    """The first cell with an error output: its index among the code cells (1-based) and ``ename: evalue``."""
    n = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or BOOTSTRAP_TAG in cell.metadata.get("tags", []):
            continue
        n += 1
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return n, f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    return None, ""


@dataclass
class Result:
    chapter: str
    lang: str
    status: str  # "passed" or "failed"
    checks: int = 0
    check_lines: list[str] = field(default_factory=list)
    figures: int = 0
    seconds: float = 0.0
    fast: bool = False
    error: str = ""
    failed_cell: int | None = None
    title: str = ""
    built: str = ""

    def row(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("chapter", "lang")}


def execute_chapter(path: Path, lang: str, fast: bool, work: Path, timeout: float):
    """Run the chapter's notebook in ``lang`` in a fresh kernel (cwd: the repository). Returns the
    executed notebook and a Result; a failing cell, a dead kernel or a timeout give status "failed"."""
    from nbclient import NotebookClient

    nb = chapter_notebook(path, lang)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["CHAPTERS_LANG"] = lang
    folder = (work / lang / path.stem).resolve()
    env["CHAPTERS_OUT"] = os.path.relpath(folder, REPO_ROOT) if folder.is_relative_to(REPO_ROOT) else str(folder)
    env["PYTHONIOENCODING"] = "utf-8"
    env.pop("MPLBACKEND", None)  # the kernel's inline backend
    if fast:
        env["CHAPTERS_FAST"] = "1"
    else:
        env.pop("CHAPTERS_FAST", None)
    from traitlets.config import Config

    sockets = tempfile.mkdtemp(prefix="book-kernel-")  # the kernel's sockets: files of its own, not TCP ports
    config = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "k")}})
    # ast_node_interactivity=none: a cell's last expression is not echoed (ch.savefig's path, ch.show's tensor),
    # so a chapter's notebook shows what the script prints, and nothing else.
    client = NotebookClient(nb, timeout=int(timeout), kernel_name="python3", allow_errors=False, record_timing=False,
                            resources={"metadata": {"path": str(REPO_ROOT)}}, config=config,
                            extra_arguments=["--InteractiveShell.ast_node_interactivity=none"])
    t0 = time.perf_counter()
    error = ""
    try:
        client.execute(env=env)
    except Exception as e:  # noqa: BLE001  (CellExecutionError, a timeout, a dead kernel: the page says which)
        error = f"{type(e).__name__}: {e}".splitlines()[0] if not hasattr(e, "ename") else f"{e.ename}: {e.evalue}"
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    seconds = round(time.perf_counter() - t0, 1)
    summary, checks, figures = _scan_outputs(nb)
    failed_cell, cell_error = _error_of(nb)
    if failed_cell is not None:
        error = cell_error
    if not error and summary is None:
        error = "the chapter did not reach ch.done() (no @@CHAPTER line)"
    if not error and summary and int(summary.get("checks", 0)) < 1:
        error = "no checks: a chapter must verify something"
    result = Result(path.stem, lang, "failed" if error else "passed",
                    checks=int(summary["checks"]) if summary else len(checks), check_lines=checks, figures=figures,
                    seconds=seconds, fast=fast, error=error[:2000], failed_cell=failed_cell,
                    title=nb.metadata.get("title", path.stem),
                    built=datetime.datetime.now().astimezone().isoformat(timespec="seconds"))
    return nb, result


def write_notebook(nb, path: Path) -> None:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".ipynb.tmp")
    nbformat.write(nb, str(tmp))  # validates against the nbformat schema
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- the site


def book_css(font_href: str | None) -> str:
    css = (TEMPLATES / "book.css").read_text(encoding="utf-8")
    url = f', url("{font_href}") format("opentype")' if font_href else ""
    return css.replace("{{ cjk_url }}", url)


def copy_font(out: Path) -> bool:
    """Copy Noto Sans SC (and its licence, the OFL) from the pylopdf-fonts-zh-cn wheel into
    out/assets, for pages read where no CJK font is installed. False when the wheel is absent."""
    try:
        import pylopdf_fonts_zh_cn
    except ImportError:
        return False
    src = Path(pylopdf_fonts_zh_cn.sans_path())
    if not src.is_file():
        return False
    dest = out / "assets" / FONT_ASSET
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists() or dest.stat().st_size != src.stat().st_size:
        shutil.copyfile(src, dest)
    try:
        from importlib.metadata import distribution

        for f in distribution("pylopdf-fonts-zh-cn").files or []:
            if f.name.upper().startswith(("LICENSE", "OFL")):
                (dest.parent / "NotoSansSC-OFL.txt").write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
                break
    except Exception:  # noqa: BLE001  (metadata missing: the font's own name table carries the licence too)
        pass
    return True


def chapter_sections(chapters_dir: Path) -> dict[str, str]:
    """chNN_name → the article section of chapters/README.md's table (its second column)."""
    sections = {}
    try:
        text = (chapters_dir / "README.md").read_text(encoding="utf-8")
    except OSError:
        return sections
    for line in text.splitlines():
        m = re.match(r"^\|\s*\[(ch\d+_\w+)\.py\]\([^)]*\)\s*\|([^|]*)\|", line)
        if m:
            sections[m.group(1)] = m.group(2).strip()
    return sections


def _section_from_title(title: str) -> str:
    m = re.search(r"§\s*[\d.]+(?:\s*[–,-]\s*[\d.]+)*", title)
    return m.group(0) if m else ""


def _inline_md(text: str, links: dict[str, str]) -> str:
    """A README table cell as HTML: escaped, `code` spans, **bold**, chNN linked to its page."""
    out = html.escape(text.strip())
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)

    def link(m):
        href = links.get(m.group(0))
        return f'<a href="{href}">{m.group(0)}</a>' if href else m.group(0)

    return re.sub(r"\bch\d{2}\b", link, out)


def article_map(readme: Path, links: dict[str, str]) -> dict | None:
    """The top-level README's "article § | topic | library | chapter" table, chapters linked."""
    try:
        lines = readme.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for i, line in enumerate(lines):
        if line.startswith("|") and "article §" in line:
            header = [c.strip() for c in line.strip().strip("|").split("|")]
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append([_inline_md(c, links) for c in row.strip().strip("|").split("|")])
            return {"header": header, "rows": rows}
    return None


def _jinja_env():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=False,
                              keep_trailing_newline=True)


def _switch(lang: str, href_for) -> list[dict]:
    """The language switch: a link to every other language's version of this page."""
    return [{"lang": other, "label": LANG_NAMES[other], "href": href_for(other)} for other in LANGS if other != lang]


def export_page(nb, result: Result, out: Path, css: str, nav: dict, footer: str) -> Path:
    """One chapter page, site/<lang>/<chapter>.html, from its executed notebook (nbconvert)."""
    from nbconvert import HTMLExporter

    lang, t = result.lang, WORDS[result.lang]
    page_nb = copy.deepcopy(nb)
    page_nb.cells = [c for c in page_nb.cells if BOOTSTRAP_TAG not in c.metadata.get("tags", [])]
    exporter = HTMLExporter(template_name="book", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.language_code = HTML_LANG[lang]
    mode = t["fast"] if result.fast else t["default"]
    if result.status == "failed":
        where = (tr(lang, f"第 {result.failed_cell} 个代码单元格", f"code cell {result.failed_cell}")
                 if result.failed_cell else tr(lang, "执行过程中", "during the run"))
        failed_text = tr(lang, f"出错位置：{where}；出错前通过 {result.checks} 项检查（{mode}，{result.seconds:g} 秒）。之后的单元格没有运行。",
                         f"It stopped at {where} after {result.checks} checks passed ({mode}, {result.seconds:g} s); "
                         "the cells after it did not run.")
    else:
        failed_text = ""
    passed_text = tr(lang, f"本页由这次构建执行生成：通过 {result.checks} 项检查，{result.figures} 张图（{mode}，{result.seconds:g} 秒）。",
                     f"Executed by this build: {result.checks} checks passed, {result.figures} figures ({mode}, {result.seconds:g} s).")
    resources = {"metadata": {"name": result.title}, "book": {
        "t": t, "css": css, "status": result.status, "error": result.error, "failed_text": failed_text,
        "passed_text": passed_text, "footer": footer, "notebook_href": f"../notebooks/{lang}/{result.chapter}.ipynb",
        "switch": nav["switch"], "prev": nav.get("prev"), "next": nav.get("next")}}
    body, _ = exporter.from_notebook_node(page_nb, resources=resources)
    path = out / lang / f"{result.chapter}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def _short(title: str) -> str:
    """"Chapter 2 · Attention …" → "Chapter 2"; "第 2 章 · …" → "第 2 章" (the prev / next labels)."""
    return re.split(r"\s*[·:：—]\s*", title, maxsplit=1)[0] or title


def write_indexes(out: Path, manifest: dict, chapters: list[Path], chapters_dir: Path, css: str, footer: str) -> None:
    """site/<lang>/index.html for every language with a page, and the front page site/index.html."""
    env = _jinja_env()
    sections = chapter_sections(chapters_dir)
    built_langs = [lang for lang in LANGS if any(lang in e for e in manifest["chapters"].values())]
    langs_meta = []
    for lang in built_langs:
        t = WORDS[lang]
        rows, links = [], {}
        counts = {"passed": 0, "failed": 0, "missing": 0}
        for path in chapters:
            entry = manifest["chapters"].get(path.stem, {}).get(lang)
            title = (entry or {}).get("title") or cellmod.title(cellmod.read_cells(path), lang) or path.stem
            status = entry["status"] if entry and (out / lang / f"{path.stem}.html").exists() else "missing"
            counts[status] += 1
            if status != "missing":
                links[path.stem[:4]] = f"{path.stem}.html"
            mode = "" if not entry else (" · " + (t["fast"] if entry.get("fast") else t["default"]))
            rows.append({
                "stem": path.stem, "title": title, "status": status, "status_text": t[status],
                "section": sections.get(path.stem) or _section_from_title(title),
                "href": f"{path.stem}.html" if status != "missing" else None,
                "notebook_href": f"../notebooks/{lang}/{path.stem}.ipynb" if status != "missing" else None,
                "checks": entry.get("checks", 0) if entry else "—", "check_lines": (entry or {}).get("check_lines", []),
                "figures": entry.get("figures", 0) if entry else "—",
                "seconds": (tr(lang, f"{entry['seconds']:g} 秒", f"{entry['seconds']:g} s") + mode) if entry else "—"})
        summary = tr(lang, f"共 {len(chapters)} 章：{counts['passed']} 章通过，{counts['failed']} 章构建失败，{counts['missing']} 章未构建。",
                     f"{len(chapters)} chapters: {counts['passed']} passed, {counts['failed']} failed, {counts['missing']} not built.")
        page = env.get_template("index.html.j2").render(
            html_lang=HTML_LANG[lang], title=t["title"], t=t, css=css, summary=summary, footer=footer,
            home_href="../index.html", chapters=rows, article_map=article_map(REPO_ROOT / "README.md", links),
            switch=_switch(lang, lambda other: f"../{other}/index.html"))
        (out / lang).mkdir(parents=True, exist_ok=True)
        (out / lang / "index.html").write_text(page, encoding="utf-8")
        langs_meta.append({"lang": lang, "html_lang": HTML_LANG[lang], "href": f"{lang}/index.html",
                           "label": {"zh": "中文版", "en": "English"}[lang], "lead": t["lead"], "summary": summary})
    landing = env.get_template("landing.html.j2").render(
        title="从零实现 BERT 与 GPT · BERT and GPT from scratch", langs=langs_meta,
        css=css.replace("../assets/", "assets/"), footer=footer,
        summary=" / ".join(m["summary"] for m in langs_meta))
    (out / "index.html").write_text(landing, encoding="utf-8")
