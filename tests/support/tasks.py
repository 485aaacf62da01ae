"""Task handlers used by the job tests (loaded by workers through SIYU_TASK_MODULES)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from siyu.jobs.errors import RetryLater
from siyu.jobs.registry import TaskContext, task

RUNS: list[str] = []
_lock = threading.Lock()


@task("test.record")
def record(ctx: TaskContext, payload: dict[str, Any]) -> None:
    time.sleep(float(payload.get("sleep", 0)))
    with _lock:
        RUNS.append(ctx.job_id)


@task("test.fail")
def always_fail(ctx: TaskContext, payload: dict[str, Any]) -> None:
    raise RuntimeError(f"provider said no (attempt {ctx.attempt})")


CALLS: dict[str, int] = {}


@task("test.later")
def later(ctx: TaskContext, payload: dict[str, Any]) -> None:
    """Asks to be run again once (a provider's rate limit), then finishes."""
    with _lock:
        CALLS[ctx.job_id] = CALLS.get(ctx.job_id, 0) + 1
        if CALLS[ctx.job_id] == 1:
            raise RetryLater(0)
        RUNS.append(ctx.job_id)


@task("test.slow_once")
def slow_once(ctx: TaskContext, payload: dict[str, Any]) -> None:
    """First attempt announces itself and hangs (to be killed); later attempts finish."""
    marker = Path(payload["dir"])
    with open(marker / f"attempt-{ctx.attempt}", "w") as f:
        f.write(str(os.getpid()))
    if ctx.attempt == 1:
        time.sleep(120)
    (marker / "done").write_text(str(ctx.attempt))


@task("test.append")
def append(ctx: TaskContext, payload: dict[str, Any]) -> None:
    """Append the job id to a shared file: one line per execution, across processes."""
    time.sleep(float(payload.get("sleep", 0.05)))
    with open(payload["file"], "a") as f:
        f.write(f"{ctx.job_id} {os.getpid()}\n")
