"""The bilingual book (issue #13): every chapter's markdown in Chinese and English, the languages of
the chapters and the runner, the rendered book (notebooks and site), the figures' CJK font, ch.show.

The render test builds one real chapter (ch02) in --fast mode, plus a chapter that fails, in
both languages (about 10 s on two cores); it needs the book extra (requirements-book.txt) and
is skipped without it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from chapters.options import default_lang, parse_lang
from chapters.render import cells as cellmod

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = REPO / "chapters"
CHAPTER_FILES = sorted(CHAPTERS.glob("ch[0-9]*_*.py"))


def _env(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
    for k in ("CHAPTERS_FAST", "CHAPTERS_OUT", "CHAPTERS_LANG"):
        env.pop(k, None)
    env.update(extra)
    return env


def _run(*args, timeout=300, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=_env(**env), capture_output=True,
                          text=True, encoding="utf-8", timeout=timeout)


# ----------------------------------------------------------------------------- (a) both languages


@pytest.mark.parametrize("path", CHAPTER_FILES, ids=[p.stem for p in CHAPTER_FILES])
def test_every_markdown_cell_comes_in_chinese_and_english(path):
    """Each markdown cell is a pair, `# %% [markdown] lang="zh"` then `# %% [markdown] lang="en"`,
    both non-empty, the zh one Chinese (CJK characters ≥ 30 % of its letters)."""
    cells = cellmod.read_cells(path)
    assert any(c.kind == "markdown" for c in cells), f"{path.name}: no markdown cells"
    problems = cellmod.pairs_problems(cells, min_share=0.3)
    assert not problems, f"{path.name}: {len(problems)} problems, e.g.\n  " + "\n  ".join(problems[:5])


def test_the_cell_reader_follows_the_percent_format():
    text = ('# %% [markdown] lang="zh"\n# # 第 1 章 · 注意力\n#\n# 中文说明。\n\n'
            '# %% [markdown] lang="en"\n# # Chapter 1 · Attention\n#\n# English text.\n\n'
            '# %%\nx = 1\n\n# %% [markdown]\n# untranslated\n\n# %% [markdown] lang="zh"\n# only English here\n')
    cells = cellmod.parse_cells(text)
    assert [(c.kind, c.lang) for c in cells] == [("markdown", "zh"), ("markdown", "en"), ("code", None),
                                                 ("markdown", None), ("markdown", "zh")]
    assert cells[0].source == "# 第 1 章 · 注意力\n\n中文说明。" and cells[2].source == "x = 1"
    assert cellmod.title(cells, "zh") == "第 1 章 · 注意力" and cellmod.title(cells, "en") == "Chapter 1 · Attention"
    problems = cellmod.pairs_problems(cells)
    assert len(problems) == 2 and "lang=None" in problems[0] and "not followed" in problems[1]
    assert cellmod.cjk_share("注意力 attention") == pytest.approx(3 / 12)
    assert cellmod.cjk_share("d_k 是查询和键的维度") > 0.7 and cellmod.cjk_share("English only") == 0


# ----------------------------------------------------------------------------- (c) --lang


def test_the_language_follows_the_option_then_the_environment_then_the_locale():
    assert parse_lang("--lang", " ZH ") == "zh"
    with pytest.raises(ValueError, match=r"--lang: expected one of the languages zh \(中文\), en \(English\), received 'xx'"):
        parse_lang("--lang", "xx")
    assert default_lang({"CHAPTERS_LANG": "en", "LANG": "zh_CN.UTF-8"}) == "en"
    assert default_lang({"LANG": "zh_CN.UTF-8"}) == "zh" and default_lang({"LC_ALL": "zh_TW", "LANG": "C"}) == "zh"
    assert default_lang({"LANG": "en_GB.UTF-8"}) == "en" and default_lang({}) == "en"
    assert default_lang({"LC_ALL": "C.UTF-8", "LANG": "zh_CN.UTF-8"}) == "en"  # LC_ALL wins
    with pytest.raises(ValueError, match="CHAPTERS_LANG"):
        default_lang({"CHAPTERS_LANG": "fr"})


def test_a_bad_lang_exits_2_listing_the_languages_for_a_chapter_and_for_the_runner():
    for args in (["chapters/ch02_attention.py", "--fast", "--lang", "xx"], ["-m", "chapters", "--lang", "xx", "--list"],
                 ["-m", "chapters.render", "--lang", "xx"]):
        proc = _run(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "--lang: expected one of the languages zh (中文), en (English), received 'xx'" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    proc = _run("-m", "chapters", "--list", CHAPTERS_LANG="fr")
    assert proc.returncode == 2 and "CHAPTERS_LANG: expected one of the languages" in proc.stderr


def test_ch02_prints_its_checks_in_chinese_with_lang_zh(tmp_path):
    proc = _run("chapters/ch02_attention.py", "--fast", "--lang", "zh", "--out", tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    checks = [line for line in proc.stdout.splitlines() if line.startswith("✓ ")]
    chinese = [line for line in checks if cellmod.cjk_share(line) >= 0.3]
    assert checks and len(chinese) >= len(checks) // 2, checks[:5]
    assert "（快速模式" in proc.stdout.splitlines()[0] and "项检查" in proc.stdout  # the helper's own lines
    summary = json.loads(proc.stdout.strip().splitlines()[-1][len("@@CHAPTER "):])
    assert summary["lang"] == "zh" and summary["checks"] == len(checks)


RUNNER_CHAPTER = """\
# %% [markdown] lang="zh"
# # 第 1 章 · 一个会通过的章节

# %% [markdown] lang="en"
# # Chapter 1 · A chapter that passes

# %%
import os
print("✓ CHAPTERS_LANG=" + os.environ.get("CHAPTERS_LANG", "unset"))
print('@@CHAPTER {"chapter": "ch01_good", "checks": 1, "figures": [], "seconds": 0.0}')
"""


def test_the_runner_speaks_the_chosen_language_and_passes_it_on(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "ch01_good.py").write_text(RUNNER_CHAPTER, encoding="utf-8")
    proc = _run("-m", "chapters", "--dir", src, "--out", tmp_path / "out", "--lang", "zh", "--json", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✓ CHAPTERS_LANG=zh" in proc.stdout
    assert "章节" in proc.stdout and "合计" in proc.stdout and "1/1 个章节通过" in proc.stdout
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["lang"] == "zh" and report["chapters"][0]["status"] == "ok"  # the rows stay machine-readable
    proc = _run("-m", "chapters", "--dir", src, "--list", LANG="zh_CN.UTF-8")
    assert "第 1 章 · 一个会通过的章节" in proc.stdout  # the locale picks the title's language
    proc = _run("-m", "chapters", "--dir", src, "--out", tmp_path / "out", "--lang", "en")
    assert "✓ CHAPTERS_LANG=en" in proc.stdout and "1/1 chapters ok" in proc.stdout


# ----------------------------------------------------------------------------- the helper: show, figures, font


def test_show_prints_the_values_of_small_tensors(tmp_path, capsys):
    import torch

    from chapters.book import Chapter

    ch = Chapter("ch99_demo.py", argv=["--out", str(tmp_path), "--lang", "en"])
    ch.show("w", torch.tensor([[0.123456, -2.0], [3.5, 1e-9 + 4]]))
    ch.show("ids", torch.arange(20))
    ch.show("big", torch.zeros(100, 50))
    ch.show("x", torch.ones(2, 3, 4))
    ch.show("scalar", torch.tensor(3.25))
    out = capsys.readouterr().out.splitlines()[1:]  # after the header
    assert out[0] == "  w: (2, 2) float32" and out[1].strip() == "[ 0.1235 -2.0000]" and out[2].strip() == "[ 3.5000  4.0000]"
    assert out[4].strip() == "[ 0  1  2  3 … 16 17 18 19]"
    big = out[out.index("  big: (100, 50) float32") + 1:][:7]
    assert len(big) == 7 and big[3].strip() == "…" and all(line.count("…") == 1 for line in big[:3])
    assert "[0, :, :] (the first matrix):" in "\n".join(out) and out[-1].strip() == "3.2500"


def test_fast_figures_are_100_dpi_with_a_tight_box_and_chinese_draws_without_warnings(tmp_path):
    import struct

    from chapters import book
    from chapters.book import Chapter, plt

    ch = Chapter("ch99_demo.py", argv=["--out", str(tmp_path), "--fast"])
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    ax.set(title="注意力权重 attention weights", xlabel="词元 token")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph would be a UserWarning
        path = ch.savefig(fig, "line")
    data = path.read_bytes()
    i = data.index(b"pHYs")
    ppm_x, ppm_y, unit = struct.unpack(">IIB", data[i + 4:i + 13])
    assert unit == 1 and round(ppm_x * 0.0254) >= 100 and round(ppm_y * 0.0254) >= 100
    width, height = struct.unpack(">II", data[16:24])
    assert width < 4 * 100 and height < 3 * 100 + 20  # the tight box trims the margins of the 400 × 300 canvas
    if book.CJK_FONT is None:
        pytest.skip("no CJK font installed (pip install pylopdf-fonts-zh-cn): the glyph check needs one")
    assert book.CJK_FONT in plt.rcParams["font.family"]


def test_the_cjk_font_comes_from_the_wheel_in_requirements():
    pytest.importorskip("pylopdf_fonts_zh_cn")
    from chapters import book

    assert book.CJK_FONT == "Noto Sans SC"
    assert "pylopdf-fonts-zh-cn" in (REPO / "requirements.txt").read_text(encoding="utf-8")


def test_chapter_without_a_file_finds_its_name_like_a_notebook_would(tmp_path, monkeypatch):
    from chapters.book import Chapter

    monkeypatch.setenv("JPY_SESSION_NAME", "/somewhere/chapters/ch05_positions.py")
    ns = {"Chapter": Chapter, "argv": ["--out", str(tmp_path)]}
    exec("ch = Chapter(argv=argv)", ns)  # noqa: S102  (a notebook's globals: no __file__)
    assert ns["ch"].name == "ch05_positions"
    ns["__vsc_ipynb_file__"] = "/x/ch07_seq2seq.ipynb"
    exec("ch = Chapter(argv=argv)", ns)  # noqa: S102
    assert ns["ch"].name == "ch07_seq2seq"


# ----------------------------------------------------------------------------- the glossary


def test_the_glossary_has_at_least_40_terms_each_with_its_chapter():
    rows = [line for line in (REPO / "docs" / "glossary.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("| ") and not line.startswith("| English") and not line.startswith("|---")]
    assert len(rows) >= 40
    for row in rows:
        cols = [c.strip() for c in row.strip("|").split("|")]
        assert len(cols) >= 3 and cellmod.cjk_share(cols[1]) > 0.3 and re.search(r"ch\d\d", cols[2]), row
    text = "\n".join(rows)
    for term in ("词元", "注意力", "自注意力", "多头注意力", "层归一化", "残差连接", "前馈网络", "位置编码", "掩码语言模型",
                 "下一句预测", "预训练", "微调", "交叉熵", "精确率", "召回率", "池化", "教师强制", "采样", "束搜索"):
        assert term in text, term


# ----------------------------------------------------------------------------- (b) the rendered book

FAILING_CHAPTER = """\
# %% [markdown] lang="zh"
# # 第 3 章 · 一个会失败的章节

# %% [markdown] lang="en"
# # Chapter 3 · A chapter that fails

# %%
print("✓ the first cell runs")

# %%
raise RuntimeError("this chapter fails on purpose")
"""


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    for module in ("jupytext", "nbclient", "nbconvert", "nbformat", "ipykernel"):
        pytest.importorskip(module, reason="the book extra: pip install -r requirements-book.txt")
    root = tmp_path_factory.mktemp("book")
    src = root / "src"
    src.mkdir()
    for name in ("ch02_attention.py", "README.md"):
        shutil.copy(CHAPTERS / name, src / name)
    (src / "ch03_fails.py").write_text(FAILING_CHAPTER, encoding="utf-8")
    site = root / "site"
    proc = _run("-m", "chapters.render", "--dir", src, "--out", site, "--fast", "--jobs", "2", "--work", root / "work", timeout=400)
    return site, proc


def test_the_build_writes_both_languages_marks_the_failure_and_exits_1(built_book):
    site, proc = built_book
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2/4 notebooks passed" in proc.stdout, proc.stdout
    manifest = json.loads((site / "book.json").read_text(encoding="utf-8"))
    assert manifest["generator"] == "chapters.render"
    for lang in ("zh", "en"):
        for stem in ("ch02_attention",):
            entry = manifest["chapters"][stem][lang]
            assert entry["status"] == "passed" and entry["checks"] >= 10 and entry["figures"] >= 1 and entry["fast"]
        failed = manifest["chapters"]["ch03_fails"][lang]
        assert failed["status"] == "failed" and "RuntimeError: this chapter fails on purpose" in failed["error"]
        page = (site / lang / "ch03_fails.html").read_text(encoding="utf-8")
        assert 'class="book-failed"' in page and "this chapter fails on purpose" in page
        index = (site / lang / "index.html").read_text(encoding="utf-8")
        assert re.search(r'<tr class="row-failed">\s*<td><a href="ch03_fails.html">', index)
        assert index.count('<tr class="row-passed">') == 1


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_pages_have_outputs_figures_and_the_language_switch(built_book, lang):
    site, _ = built_book
    other = "en" if lang == "zh" else "zh"
    for stem in ("ch02_attention",):
        page = (site / lang / f"{stem}.html").read_text(encoding="utf-8")
        assert f'<html lang="{"zh-CN" if lang == "zh" else "en"}">' in page
        assert page.count('src="data:image/png;base64,') >= 2  # the figures, inline
        assert "jp-OutputArea-output" in page and "✓ " in page  # the outputs, with the checks
        assert f'href="../{other}/{stem}.html"' in page  # the language switch
        assert f'href="../notebooks/{lang}/{stem}.ipynb"' in page and 'class="book-passed"' in page
        assert "@@CHAPTER" not in page and "__file__ = " not in page  # the build's plumbing stays out
        assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', page)  # offline
    zh = (site / "zh" / "ch02_attention.html").read_text(encoding="utf-8")
    en = (site / "en" / "ch02_attention.html").read_text(encoding="utf-8")
    assert cellmod.cjk_share(zh) > 3 * cellmod.cjk_share(en)
    index = (site / lang / "index.html").read_text(encoding="utf-8")
    assert 'href="ch02_attention.html"' in index and f'href="../{other}/index.html"' in index
    assert "§4.2.1" in index  # the article-section map
    landing = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="zh/index.html"' in landing and 'href="en/index.html"' in landing


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_notebooks_have_outputs_figures_and_only_their_language(built_book, lang):
    import nbformat

    site, _ = built_book
    nb = nbformat.read(site / "notebooks" / lang / "ch02_attention.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    assert markdown and all(c.metadata.get("lang") == lang for c in markdown)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "✓ " in text and "@@CHAPTER" not in text
    share = cellmod.cjk_share("".join(c.source for c in markdown))
    assert share > 0.3 if lang == "zh" else share < 0.05


def test_a_foreign_folder_is_refused_and_an_earlier_build_is_reused(tmp_path):
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("not a book")
    proc = _run("-m", "chapters.render", "--out", foreign, "--only", "02")
    assert proc.returncode == 2 and "is not empty and is not an earlier build" in proc.stderr and "--force" in proc.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["mine.txt"]

    from chapters.render import build

    empty = tmp_path / "new"
    manifest = build.prepare_out(empty, force=False)
    manifest["chapters"]["ch02_attention"] = {"zh": {"status": "passed"}}
    build.write_manifest(empty, manifest)
    (empty / "zh").mkdir()
    assert build.prepare_out(empty, force=False)["chapters"] == {"ch02_attention": {"zh": {"status": "passed"}}}
    assert build.prepare_out(foreign, force=True)["chapters"] == {}
    (tmp_path / "file").write_text("x")
    with pytest.raises(build.BuildError, match="it is a file"):
        build.prepare_out(tmp_path / "file", force=True)


def test_every_exercise_check_speaks_both_languages():
    """Each chapter's check_*_ex gives its messages through ch.tr(zh, en): every AssertionError it
    raises and the summary it returns are a ch.tr call (or a name bound to one), whose first
    argument holds Chinese and whose second holds none."""
    import ast

    def is_tr(node):
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "tr"

    def text(node):
        return "".join(v.value for v in ast.walk(node) if isinstance(v, ast.Constant) and isinstance(v.value, str))

    def own_nodes(fn):  # fn's body without the functions defined inside it (helpers return data, not messages)
        todo = [c for c in fn.body if not isinstance(c, (ast.FunctionDef, ast.Lambda))]
        while todo:
            node = todo.pop()
            yield node
            todo.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, (ast.FunctionDef, ast.Lambda)))

    checked = 0
    for path in sorted((REPO / "chapters").glob("ch[0-9][0-9]_*.py")):
        for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(fn, ast.FunctionDef) and fn.name.startswith("check_") and fn.name.endswith("_ex")):
                continue
            bound = {t.id for a in ast.walk(fn) if isinstance(a, ast.Assign) and is_tr(a.value)
                     for t in a.targets if isinstance(t, ast.Name)}
            messages = [n.exc.args[0] for n in ast.walk(fn) if isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call)
                        and getattr(n.exc.func, "id", "") == "AssertionError" and n.exc.args]
            messages += [n.value for n in own_nodes(fn) if isinstance(n, ast.Return) and n.value is not None]
            for m in messages:
                where = f"{path.name}:{m.lineno} {fn.name}"
                assert is_tr(m) or (isinstance(m, ast.Name) and m.id in bound), f"{where}: message not through ch.tr"
                if is_tr(m):
                    zh, en = m.args
                    assert re.search(r"[\u4e00-\u9fff]", text(zh)) and not re.search(r"[\u4e00-\u9fff]", text(en)), where
                checked += 1
    assert checked > 100
