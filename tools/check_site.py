"""Check the built book in a real headless browser (Chromium, driven through chromedriver by Selenium).

    apt-get install chromium chromium-driver      # Debian's packages
    pip install selenium                          # in requirements-book.txt
    python -m chapters.render --out out/book --fast --only 02 05
    python tools/check_site.py out/book --shots out/site-check

For the front page, each language's index and one chapter page in each language (--chapter, default
the first chapter of the build) it loads the page from disk with every network request refused,
then checks: no console errors (nor failed loads), the language switch link, the index's chapter
table, the chapter's own text (its title, its first heading in that language, its ✓ lines), the
figures (PNG images that decoded, width > 0) and nothing fetched from http(s). It saves a
screenshot of each page's top and of the chapter's first figure, and writes report.json beside them.
Exit status 0 when every check holds, 1 otherwise, 2 when Chromium or chromedriver is missing.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
DRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def _first(paths, name):
    for p in paths:
        if Path(p).exists():
            return p
    return shutil.which(name)


def make_driver(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = _first(CHROMIUM, "chromium"), _first(DRIVER, "chromedriver")
    if not binary or not driver:
        raise FileNotFoundError("Chromium or chromedriver not found: apt-get install chromium chromium-driver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                f"--window-size={width},{height}", "--allow-file-access-from-files",
                "--host-resolver-rules=MAP * ~NOTFOUND"):  # offline: any request to a host fails (and would log an error)
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=opts)


FIGURES_JS = """
const imgs = Array.from(document.querySelectorAll('img'));
return imgs.map(i => ({src: i.src.slice(0, 22), complete: i.complete, width: i.naturalWidth, height: i.naturalHeight}));
"""
REMOTE_JS = """
const urls = [];
document.querySelectorAll('script[src], link[href], img[src], iframe[src]').forEach(e => {
  const u = e.getAttribute('src') || e.getAttribute('href');
  if (/^(https?:)?\\/\\//.test(u) && e.tagName !== 'A') urls.push(e.tagName + ' ' + u);
});
return urls;
"""


def check_page(driver, path: Path, shot: Path, expect: dict) -> dict:
    """Load one page, run the checks in ``expect`` and save a screenshot. Returns the page's report."""
    from selenium.webdriver.common.by import By

    driver.get(path.resolve().as_uri())
    driver.execute_script("return document.fonts ? document.fonts.ready.then(() => true) : true")
    problems = []
    logs = [entry for entry in driver.get_log("browser")]
    errors = [e["message"] for e in logs if e.get("level") == "SEVERE"]
    if errors:
        problems.append(f"{len(errors)} console errors: {errors[:3]}")
    text = driver.find_element(By.TAG_NAME, "body").text
    for needle in expect.get("text", []):
        if needle and needle not in text:
            problems.append(f"text missing: {needle[:80]!r}")
    switch = driver.find_elements(By.CSS_SELECTOR, "a.book-lang")
    if expect.get("switch") and not any(a.get_attribute("hreflang") == expect["switch"] for a in switch):
        problems.append(f"no language switch link to {expect['switch']}")
    figures = [f for f in driver.execute_script(FIGURES_JS) if f["src"].startswith("data:image/png")]
    if len(figures) < expect.get("figures", 0):
        problems.append(f"{len(figures)} PNG figures, expected at least {expect['figures']}")
    broken = [f for f in figures if not f["complete"] or f["width"] == 0]
    if broken:
        problems.append(f"{len(broken)} figures did not decode")
    remote = driver.execute_script(REMOTE_JS)
    if remote:
        problems.append(f"remote assets: {remote[:3]}")
    lang = driver.execute_script("return document.documentElement.lang")
    shot.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(shot))
    report = {"page": str(path), "lang": lang, "title": driver.title, "console_errors": errors,
              "console_messages": len(logs), "figures": len(figures),
              "figure_sizes": [f"{f['width']}x{f['height']}" for f in figures[:6]],
              "switch": [a.get_attribute("href").rsplit("/", 2)[-2:] for a in switch],
              "text_chars": len(text), "screenshot": str(shot), "problems": problems}
    if figures and expect.get("figure_shot"):
        img = driver.find_elements(By.CSS_SELECTOR, "img[src^='data:image/png']")[0]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", img)
        fig_shot = shot.with_name(shot.stem + "-figure.png")
        driver.save_screenshot(str(fig_shot))
        report["figure_screenshot"] = str(fig_shot)
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python tools/check_site.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("site", type=Path, help="the folder python -m chapters.render wrote (it has book.json)")
    ap.add_argument("--shots", type=Path, default=Path("out/site-check"), help="where screenshots and report.json go")
    ap.add_argument("--chapter", default=None, help="the chapter page to check (default: the first one built)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=1400)
    args = ap.parse_args(argv)

    try:
        manifest = json.loads((args.site / "book.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        ap.error(f"{args.site}: not a build of the book (book.json: {e})")
    built = manifest.get("chapters", {})
    chapter = args.chapter or next(iter(sorted(built)), None)
    if chapter not in built:
        ap.error(f"--chapter: {chapter!r} was not built; built: {', '.join(sorted(built)) or 'none'}")
    langs = [lang for lang in ("zh", "en") if lang in built[chapter]]

    try:
        driver = make_driver(args.width, args.height)
    except Exception as e:  # noqa: BLE001  (no browser, no driver, or it would not start)
        print(f"error: cannot start headless Chromium: {e}", file=sys.stderr)
        return 2
    reports = []
    try:
        reports.append(check_page(driver, args.site / "index.html", args.shots / "front.png",
                                  {"text": ["中文版", "English"], "switch": None}))
        for lang in langs:
            other = next(o for o in ("zh", "en") if o != lang)
            entry = built[chapter][lang]
            reports.append(check_page(driver, args.site / lang / "index.html", args.shots / f"index-{lang}.png",
                                      {"text": [entry.get("title", "")], "switch": other}))
            lines = entry.get("check_lines", [])
            reports.append(check_page(driver, args.site / lang / f"{chapter}.html", args.shots / f"{chapter}-{lang}.png",
                                      {"text": [entry.get("title", "")] + lines[:3] + lines[-1:],
                                       "switch": other, "figures": entry.get("figures", 1), "figure_shot": True}))
    finally:
        driver.quit()
    args.shots.mkdir(parents=True, exist_ok=True)
    (args.shots / "report.json").write_text(json.dumps(reports, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    bad = 0
    for r in reports:
        status = "ok" if not r["problems"] else "PROBLEMS"
        bad += bool(r["problems"])
        print(f"{status:8} {r['page']}  lang={r['lang']}  figures={r['figures']}  console errors={len(r['console_errors'])}  "
              f"text={r['text_chars']} chars  screenshot={r['screenshot']}")
        for p in r["problems"]:
            print(f"         - {p}")
    print(f"{len(reports) - bad}/{len(reports)} pages ok; report: {args.shots / 'report.json'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
