"""One thread per test process: pytest-xdist runs two workers on two cores, and each torch
process defaulting to every core would oversubscribe the machine several times over."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the subprocesses tests start
os.environ.setdefault("CHAPTERS_LANG", "en")  # the tests read English check lines; a zh locale would switch them

import torch  # noqa: E402

torch.set_num_threads(1)
