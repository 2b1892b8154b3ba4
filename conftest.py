"""Root pytest configuration: fast offline timings for every test, and which folders hold no tests."""

import contextlib
import os
from pathlib import Path

import pytest

# The offline server reads these when it starts (once per process, and in each nbval kernel it inherits
# them). 0.05 makes a "5 s" conversation take 0.25 s; ratios between runners stay the same.
os.environ.setdefault("AGENTLAB_TIME_SCALE", "0.05")
os.environ.setdefault("AGENTLAB_BACKEND", "offline")
os.environ.setdefault("MPLBACKEND", "Agg")

# Exercises hold TODO cells on purpose: tests/lessons/test_exercises.py checks them; nbval runs lessons and solutions.
collect_ignore = ["notebooks/exercises", "benchmarks", "docs"]


def pytest_collection_modifyitems(items: list) -> None:  # type: ignore[type-arg]
    """nbval compares every output type; check()'s machine verdict holds raw timings, and the HTML beside it
    says the same thing and is compared (with the timings sanitized), so nbval skips the machine copy."""
    mime = "application/vnd.agentlab.check+json"
    for item in items:
        parent = getattr(item, "parent", None)
        skip = getattr(parent, "skip_compare", None)
        if isinstance(skip, tuple) and mime not in skip:
            parent.skip_compare = (*skip, mime)  # type: ignore[union-attr]


# -- nbval's kernels, forked from a warm zygote ----------------------------------------------------------------
# Each notebook gets a fresh kernel, and a kernel started from scratch spends about 5 s of CPU before its first
# answer: importing ipykernel and agentlab (openai), then openai building its pydantic models on the first
# response. The grader's zygote (agentlab/classroom/kernels.py) has done all that once and forks each kernel in
# milliseconds: a new process that has run none of the notebook's code, on this environment's Python, which is
# what --nbval-current-env asks for. AGENTLAB_NBVAL_FORK=0 starts every kernel from scratch instead.
_zygote: contextlib.ExitStack | None = None


def pytest_collection_finish(session: pytest.Session) -> None:
    global _zygote
    notebooks = any(type(item).__name__ == "IPyNbCell" for item in session.items)
    if not notebooks or os.environ.get("AGENTLAB_NBVAL_FORK") == "0" or not hasattr(os, "fork") or _zygote:
        return
    from agentlab.classroom.kernels import KERNEL_NAME, forked_kernels
    from agentlab.offline import start

    _zygote = contextlib.ExitStack()
    with start() as warm_up:  # the zygote's one warm-up conversation; each kernel then starts its own server
        kernels = _zygote.enter_context(forked_kernels({**os.environ, "AGENTLAB_OFFLINE_URL": warm_up.base_url}))
        spec = kernels()
    if spec is None:
        return
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        filter(None, [str(Path(spec.kernel_dirs[0]).parent), os.environ.get("JUPYTER_PATH")])
    )
    session.config.option.nbval_current_env = False
    session.config.option.nbval_kernel_name = KERNEL_NAME


def pytest_unconfigure(config: pytest.Config) -> None:
    if _zygote is not None:
        _zygote.close()
