"""loss.png is drawn by a helper process, so a training process never imports matplotlib
(minitransformer.plotting; issue #16, peak memory against nanoGPT)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from minitransformer import plotting

ROOT = Path(__file__).resolve().parents[1]
ROWS = [{"step": s, "split": "train", "loss": 4.0 - 0.02 * s} for s in range(0, 100, 5)] + \
       [{"step": s, "split": "val", "loss": 4.1 - 0.02 * s} for s in (0, 50, 95)]


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_training_process_never_imports_matplotlib_and_the_figure_is_the_same(tmp_path):
    """Two figures through the helper, then the same rows drawn in-process by draw_loss_curves: the
    PNG bytes are equal, and the first process still has no matplotlib (one helper, reused)."""
    code = f"""
import json, sys
from minitransformer.plotting import plot_loss_curves
rows = json.loads({json.dumps(json.dumps(ROWS))})
plot_loss_curves(rows, {str(tmp_path / "a.png")!r}, title="run")
import minitransformer.plotting as p
first = p._helper.pid
plot_loss_curves(rows[:5], {str(tmp_path / "b.png")!r}, title="run")
print(json.dumps({{"matplotlib": "matplotlib" in sys.modules, "same_helper": p._helper.pid == first}}))
"""
    seen = json.loads(run_python(code).splitlines()[-1])
    assert seen == {"matplotlib": False, "same_helper": True}
    plotting.draw_loss_curves(ROWS, tmp_path / "here.png", title="run")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "here.png").read_bytes()
    assert (tmp_path / "b.png").read_bytes() != (tmp_path / "a.png").read_bytes()


def test_a_character_level_run_loads_no_plotting_or_subword_libraries():
    """What the CLIs import before a run: neither matplotlib (the helper draws), nor sentencepiece
    and regex (loaded by the tokenizers that use them): 36 MiB a character-level run does not carry."""
    loaded = run_python("import sys, minigpt.cli, minibert.cli; "
                        "print([m for m in ('matplotlib', 'sentencepiece', 'regex') if m in sys.modules])")
    assert loaded.split()[-1] == "[]"


@pytest.mark.parametrize("command", [
    [sys.executable, "-c", "import sys; sys.exit(3)"],  # dies at once: a broken pipe
    [sys.executable, "-c", "import sys; sys.stdin.readline(); print('no')"],  # answers, but not ok
    ["/nonexistent/python"],  # cannot start
])
def test_a_failing_helper_falls_back_to_drawing_in_process(tmp_path, monkeypatch, command):
    monkeypatch.setattr(plotting, "matplotlib_imported", lambda: False)  # this test process has it
    monkeypatch.setattr(plotting, "HELPER_COMMAND", command)
    monkeypatch.setattr(plotting, "_helper", None)
    plotting.plot_loss_curves(ROWS, tmp_path / "loss.png", title="run")
    assert plotting._helper is not None or command[0] == "/nonexistent/python"  # it was tried
    plotting.draw_loss_curves(ROWS, tmp_path / "here.png", title="run")
    assert (tmp_path / "loss.png").read_bytes() == (tmp_path / "here.png").read_bytes()


def test_an_error_is_matplotlibs_own(tmp_path, monkeypatch):
    """The helper cannot write into a missing folder; the caller then gets the error drawing it itself."""
    monkeypatch.setattr(plotting, "matplotlib_imported", lambda: False)
    monkeypatch.setattr(plotting, "_helper", None)
    with pytest.raises(FileNotFoundError):
        plotting.plot_loss_curves(ROWS, tmp_path / "missing" / "loss.png")
    assert plotting._helper is not None and plotting._helper.poll() is None  # the helper answered, and lives on


def test_a_process_with_matplotlib_draws_itself(tmp_path):
    code = f"""
import matplotlib
import minitransformer.plotting as p
p.plot_loss_curves([{{"step": 0, "split": "train", "loss": 1.0}}], {str(tmp_path / "a.png")!r})
print(p._helper is None)
"""
    assert run_python(code).split()[-1] == "True" and (tmp_path / "a.png").stat().st_size > 1000


def test_ctrl_c_is_left_to_the_run(tmp_path, monkeypatch):
    """A terminal's Ctrl-C reaches the whole process group: the helper must not print a traceback
    and die, it goes on answering (and ends with its stdin)."""
    import signal

    monkeypatch.setattr(plotting, "matplotlib_imported", lambda: False)
    monkeypatch.setattr(plotting, "_helper", None)
    plotting.plot_loss_curves(ROWS, tmp_path / "a.png")
    helper = plotting._helper
    helper.send_signal(signal.SIGINT)
    plotting.plot_loss_curves(ROWS[:3], tmp_path / "b.png")
    assert plotting._helper is helper and helper.poll() is None and (tmp_path / "b.png").is_file()
    helper.stdin.close()
    assert helper.wait(timeout=30) == 0


def test_the_helper_loop_answers_each_request():
    import io

    out = io.StringIO()
    plotting.serve(io.StringIO("not json\n" + json.dumps({"rows": ROWS, "path": "/nonexistent/x.png", "title": "t"}) + "\n"),
                   out)
    answers = out.getvalue().splitlines()
    assert len(answers) == 2 and answers[0].startswith("error JSONDecodeError") and answers[1].startswith("error FileNotFoundError")
