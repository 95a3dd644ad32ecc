"""Thread counts from the free cores (issue #16): minitransformer.cli.free_cores, --threads of both
CLIs, and the chapters runner's --jobs default."""
import os

import pytest
import torch

from minitransformer import cli


@pytest.mark.parametrize("cpus, load, expected", [(2, 0.0, 2), (2, 0.6, 1), (2, 1.4, 1), (2, 3.9, 1), (16, 4.4, 12),
                                                  (8, 0.49, 8)])
def test_free_cores_is_the_cpus_minus_the_rounded_load_at_least_one(monkeypatch, cpus, load, expected):
    """Where /proc/stat cannot be read, the 1-minute load average counts the busy CPUs."""
    monkeypatch.setattr(cli, "cpu_times", lambda path="/proc/stat": None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, 0.0, 0.0))
    assert cli.free_cores() == expected


def test_free_cores_without_a_load_average(monkeypatch):
    def unavailable():
        raise OSError("no load average here")

    monkeypatch.setattr(cli, "cpu_times", lambda path="/proc/stat": None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr(os, "getloadavg", unavailable)
    assert cli.free_cores() == 3


@pytest.mark.parametrize("idle_share, expected", [(1.0, 4), (0.5, 2), (0.3, 1), (0.0, 1), (0.85, 3)])
def test_free_cores_counts_the_cpus_busy_now_from_proc_stat(monkeypatch, idle_share, expected):
    """Two snapshots of /proc/stat 0.1 s apart: busy = (1 − Δidle/Δall) × CPUs; a high load average
    left by a job that has ended (here 3.9) does not count."""
    snapshots = iter([(1000, 600), (1000 + 400, 600 + round(400 * idle_share))])
    monkeypatch.setattr(cli, "cpu_times", lambda path="/proc/stat": next(snapshots))
    monkeypatch.setattr(cli.time, "sleep", lambda s: None)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (3.9, 3.9, 3.9))
    assert cli.free_cores() == expected


def test_cpu_times_reads_the_first_line_of_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\n")
    assert cli.cpu_times(str(stat)) == (980, 820)  # all = 100+5+50+800+20+3+2+0, idle = 800 + 20
    stat.write_text("nonsense\n")
    assert cli.cpu_times(str(stat)) is None and cli.cpu_times(str(tmp_path / "absent")) is None


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_set_threads_sets_torch_and_defaults_to_omp_num_threads_else_the_free_cores(monkeypatch, restore_threads):
    assert cli.set_threads(1) == 1 and torch.get_num_threads() == 1
    monkeypatch.setattr(cli, "free_cores", lambda: 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cli.set_threads(None) == 2 and torch.get_num_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's setting wins over the free cores
    assert cli.set_threads(None) == 3 and torch.get_num_threads() == 3
    assert cli.set_threads(1) == 1  # and --threads over both
    for unusable in ("0", "two", "4,2", ""):
        monkeypatch.setenv("OMP_NUM_THREADS", unusable)
        assert cli.threads_from_env() is None and cli.set_threads(None) == 2


@pytest.mark.parametrize("module, command", [("minigpt.cli", "sample"), ("minibert.cli", "evaluate")])
def test_both_clis_take_threads_and_refuse_a_bad_count(module, command, restore_threads, capsys):
    import importlib

    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as e:
        main([command, "--threads", "0"])
    assert e.value.code == 2 and "argument --threads: expected a positive integer, received '0'" in capsys.readouterr().err
    torch.set_num_threads(2)
    with pytest.raises((ValueError, FileNotFoundError, SystemExit)):  # no checkpoint: fails after the threads are set
        main([command, "--threads", "1", "--checkpoint", "/nonexistent/run",
              *(["--data", "/nonexistent/test.tsv"] if command == "evaluate" else [])])
    assert torch.get_num_threads() == 1
