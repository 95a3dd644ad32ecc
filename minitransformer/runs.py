"""Run folders: what a training's ``out_dir`` holds, who may write into it, and where a resume starts.

A run folder looks like::

    OUT_DIR/
        checkpoint/            the latest checkpoint (see checkpoint.py); .checkpoint.old after a crash mid-swap
        metrics.jsonl          one row per log / evaluation, appended as training goes
        metrics.csv, loss.png  rewritten from the rows at each checkpoint and at the end
        .lock                  while a training runs: the PID, host, start time and command that holds it

The rules, shared by ``minigpt train``, ``minibert pretrain|finetune`` and the Python API (Trainer):

- a folder that already holds a run is refused, unless ``resume`` (continue it) or ``overwrite``
  (delete it, then start afresh) is given -- never both;
- ``resume`` starts from ``checkpoint/``, or from ``.checkpoint.old`` when a crash struck between
  the two renames of a checkpoint swap (:func:`find_resume_checkpoint`, the one resume path);
- one training at a time: the second one to start in a folder is refused, naming the first one's
  process (:class:`RunLock`; on POSIX an ``flock`` the kernel drops when the process dies, so a
  ``kill -9`` never leaves a lock behind; elsewhere an O_EXCL file whose PID is checked for life);
- a folder that is a file, sits under a file, or cannot be written is a ValueError naming the path.
"""
from __future__ import annotations

import collections
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from .checkpoint import STATE_JSON, resolve_checkpoint_dir

try:  # POSIX: a kernel lock, released when its process ends, however it ends
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None

CHECKPOINT_DIR = "checkpoint"
METRICS_FILES = ("metrics.jsonl", "metrics.csv", "loss.png")
LOCK_FILE = ".lock"


# ----------------------------------------------------------------------------- what a folder holds


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """``out_dir`` as a Path, when it is a folder or can become one. ValueError when it is a file,
    when one of its parents is a file, or when the nearest existing parent cannot be written.
    Creates nothing (:func:`make_run_dir` does, when training starts)."""
    path = Path(out_dir)
    if os.path.exists(path) and not os.path.isdir(path):  # os.path: False, not PermissionError, behind a locked folder
        raise ValueError(f"out_dir: expected a folder, received the file {path}; choose another --out-dir")
    existing = next(p for p in (path, *path.absolute().parents) if os.path.exists(p))
    if not os.path.isdir(existing):
        raise ValueError(f"out_dir: expected a folder, received {path}, whose parent {existing} is a file; "
                         f"choose another --out-dir")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"out_dir: expected a writable folder, received {path} ({existing} is read-only); "
                         f"choose another --out-dir")
    return path


def run_contents(out_dir: str | os.PathLike) -> list[str]:
    """The names of an earlier run's records in ``out_dir``: its checkpoint (or the backup a crash
    left) and its metrics files; [] for a new or empty folder (an empty metrics.jsonl counts as none)."""
    path = Path(out_dir)
    names = [n for n in (CHECKPOINT_DIR, f".{CHECKPOINT_DIR}.old") if (path / n).exists()]
    for name in METRICS_FILES:
        file = path / name
        if file.is_file() and (name != "metrics.jsonl" or file.stat().st_size > 0):
            names.append(name)
    return names


def find_resume_checkpoint(out_dir: str | os.PathLike) -> Path:
    """The checkpoint a resumed run starts from: ``out_dir/checkpoint``, or ``out_dir/.checkpoint.old``
    when a crash struck between the two renames of a checkpoint swap. ValueError when there is
    none, or when it carries no trainer state (a model saved by ``save_checkpoint`` alone)."""
    wanted = Path(out_dir) / CHECKPOINT_DIR
    found = resolve_checkpoint_dir(wanted)
    if not found.is_dir():
        raise ValueError(f"resume: expected a checkpoint in {wanted} (or its backup .{CHECKPOINT_DIR}.old), found none "
                         f"(train without --resume first)")
    if not (found / STATE_JSON).is_file():
        raise ValueError(f"resume: expected a checkpoint with trainer state in {found}, received one without "
                         f"{STATE_JSON} (a saved model, not a training run: start a new run from it instead)")
    return found


def check_resume_or_overwrite(resume: bool, overwrite: bool) -> None:
    """ValueError when both are set: one continues the run in the folder, the other deletes it."""
    if resume and overwrite:
        raise ValueError("resume, overwrite: expected at most one of them, received both (--resume / resume=True "
                         "continues the run in the out_dir, --overwrite / overwrite=True deletes it and starts afresh)")


def check_run_dir(out_dir: str | os.PathLike, resume: bool = False, overwrite: bool = False) -> Path:
    """Everything that can be said about ``out_dir`` before training starts: a usable folder
    (:func:`check_out_dir`), not in use by another training, and -- with ``resume`` -- a checkpoint
    to continue, or -- without ``resume`` or ``overwrite`` -- no earlier run to lose. Returns the Path."""
    check_resume_or_overwrite(resume, overwrite)
    path = check_out_dir(out_dir)
    holder = lock_holder(path)
    if holder is not None:
        raise ValueError(busy_message(path, holder))
    check_run_contents(path, resume, overwrite)
    return path


def check_run_contents(out_dir: str | os.PathLike, resume: bool = False, overwrite: bool = False) -> None:
    """With ``resume``: ValueError unless there is a checkpoint to continue. Without ``resume`` or
    ``overwrite``: ValueError when ``out_dir`` holds an earlier run, which training would replace."""
    if resume:
        find_resume_checkpoint(out_dir)
    elif not overwrite:
        found = run_contents(out_dir)
        if found:
            raise ValueError(
                f"out_dir: expected a new or empty folder, received {out_dir}, which holds a run ({', '.join(found)}); "
                f"pass --resume to continue it, --overwrite to delete it and start afresh (resume=True / overwrite=True "
                f"in TrainConfig), or choose another --out-dir")


def make_run_dir(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` (and its parents); ValueError naming it when the file system refuses."""
    path = check_out_dir(out_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"out_dir: expected a folder that can be created, received {path} ({e.strerror or e}); "
                         f"choose another --out-dir") from None
    return path


def clear_run(out_dir: str | os.PathLike) -> list[str]:
    """Delete an earlier run's records (checkpoint, its backup and temporaries, metrics files) from
    ``out_dir``, for ``overwrite``; other files stay. Returns the names deleted."""
    path, removed = Path(out_dir), []
    for name in run_contents(path) + [p.name for p in path.glob(f".{CHECKPOINT_DIR}.tmp-*")]:
        target = path / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
        removed.append(name)
    empty = path / "metrics.jsonl"
    if empty.is_file():
        empty.unlink()
    return removed


# ----------------------------------------------------------------------------- one training at a time


def _pid_alive(pid: int) -> bool:
    """Whether a process with this PID runs on this host (one owned by another user counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # pragma: no cover (Windows: os.kill(pid, 0) is not a probe there)
        return True
    return True


def _read_holder(file: Path) -> dict:
    """What the lock file says about its holder ({} when it is empty or unreadable)."""
    try:
        info = json.loads(file.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _holder_pid(info: dict) -> int:
    """The PID a lock file names (0 when it names none)."""
    pid = info.get("pid")
    return pid if isinstance(pid, int) and not isinstance(pid, bool) else 0


def lock_holder(out_dir: str | os.PathLike) -> dict | None:
    """Who holds ``out_dir``'s lock ({"pid", "host", "started", "command"}, some perhaps missing),
    or None when no running training does. Takes nothing: a lock file whose process is gone (a
    ``kill -9``) is stale, and one whose PID runs but holds no flock belongs to a reused PID."""
    file = Path(out_dir) / LOCK_FILE
    if not file.is_file():
        return None
    info = _read_holder(file)
    elsewhere = info.get("host") not in (None, socket.gethostname())
    if not elsewhere and not _pid_alive(_holder_pid(info)):
        return None
    if fcntl is None:  # pragma: no cover
        return info
    try:
        fd = os.open(file, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # succeeds only when nobody holds it exclusively
    except OSError:
        return info
    finally:
        os.close(fd)  # closing drops the shared lock, if taken
    return None


def busy_message(out_dir: Path, holder: dict) -> str:
    """The error for a folder another training holds, naming its process."""
    who = f"process {holder.get('pid', '?')}"
    if holder.get("host") and holder["host"] != socket.gethostname():
        who += f" on {holder['host']}"
    details = ", ".join(x for x in (f"since {holder['started']}" if holder.get("started") else "",
                                    f"command: {holder['command']}" if holder.get("command") else "") if x)
    return (f"out_dir: expected a folder no other training is using, received {out_dir}, in use by {who}"
            f"{f' ({details})' if details else ''}; wait for it to finish, or choose another --out-dir "
            f"(lock file: {out_dir / LOCK_FILE})")


class RunLock:
    """The lock of one run folder, held from the start to the end of a training.

    ``with RunLock(out_dir): ...`` or ``lock = RunLock(out_dir).acquire(); ...; lock.release()``.
    ``acquire`` raises ValueError naming the holder's process when another training holds it, and
    ValueError naming the folder when the lock file cannot be written (a read-only folder)."""

    def __init__(self, out_dir: str | os.PathLike):
        self.out_dir = Path(out_dir)
        self.file = self.out_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "RunLock":
        if self._fd is None:
            try:
                self._fd = self._open_flock() if fcntl is not None else self._open_exclusive()
            except OSError as e:
                raise ValueError(f"out_dir: expected a writable folder, received {self.out_dir}, where the lock file "
                                 f"{self.file.name} cannot be written ({e.strerror or e}); choose another --out-dir") from None
            self._write_holder()
        return self

    def _open_flock(self) -> int:
        """Open and flock the lock file; retry when the file was replaced meanwhile (its last holder
        deleted it between our open and our lock)."""
        while True:
            fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ValueError(busy_message(self.out_dir, _read_holder(self.file))) from None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.file).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)

    def _open_exclusive(self) -> int:  # pragma: no cover (POSIX has fcntl)
        """Create the lock file with O_EXCL; a lock whose process no longer runs is removed first."""
        for _ in range(2):
            try:
                return os.open(self.file, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = _read_holder(self.file)
                if _pid_alive(_holder_pid(holder)):
                    raise ValueError(busy_message(self.out_dir, holder)) from None
                self.file.unlink(missing_ok=True)  # stale: its process died without releasing it
        raise ValueError(busy_message(self.out_dir, _read_holder(self.file)))

    def _write_holder(self) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join([os.path.basename(sys.executable)] + sys.argv)}
        os.ftruncate(self._fd, 0)
        os.write(self._fd, (json.dumps(info) + "\n").encode("utf-8"))

    def release(self) -> None:
        """Delete the lock file and drop the lock (deleting first: whoever opens the old file
        after this notices it was replaced and opens the new one)."""
        if self._fd is None:
            return
        try:
            self.file.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)


# ----------------------------------------------------------------------------- resuming on other data


def unknown_characters(tokenizer, text: str) -> collections.Counter:
    """The characters of ``text`` that ``tokenizer`` encodes to its unknown id, with their counts."""
    unk = getattr(tokenizer, "unk_id", None)
    if unk is None:
        return collections.Counter()
    counts = collections.Counter(text)
    return collections.Counter({c: n for c, n in counts.items() if unk in tokenizer.encode(c)})


def check_known_characters(tokenizer, texts: dict, where: str = "the checkpoint's tokenizer") -> None:
    """For a resumed run: ValueError when the training text (``{source: text}``) holds characters
    the saved tokenizer does not know, naming how many and a few of them. Applies to tokenizers
    learned on the run's own training text, which knew every one of its characters (char, and
    sentencepiece trained with character_coverage=1.0); others (byte-level GPT-2, WordPiece) pass."""
    if getattr(tokenizer, "kind", None) not in ("char", "sentencepiece"):
        return
    for source, text in texts.items():
        unknown = unknown_characters(tokenizer, text)
        if unknown:
            shown = ", ".join(f"{c!r} x{n}" for c, n in unknown.most_common(5))
            raise ValueError(
                f"--data: expected text whose characters {where} knows (the run was trained on other data), received "
                f"{source} with {len(unknown)} unknown distinct character(s), {sum(unknown.values())} occurrence(s): "
                f"{shown}{', ...' if len(unknown) > 5 else ''}; resume with the run's own data, or start a new run "
                f"(--overwrite, or another --out-dir)")
