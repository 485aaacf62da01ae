"""Run the scheduler and workers as threads of the current process (``siyu serve``)."""

from __future__ import annotations

import threading

from siyu.core.settings import Settings
from siyu.jobs.registry import load_task_modules
from siyu.jobs.scheduler import ensure_schedule
from siyu.jobs.worker import Worker, run_scheduler
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

# Housekeeping every installation runs.
SYSTEM_SCHEDULES = (
    ("system.purge_finished_jobs", "17 3 * * *", "jobs.purge_finished"),
    ("system.purge_expired_sessions", "47 3 * * *", "accounts.purge_expired"),
    ("system.refresh_statistics", "23 * * * *", "storage.refresh_statistics"),
    # Dispatch and sandbox receipts any workspace still has due (a safety net: sends schedule
    # their own dispatch).
    ("system.channels_sweep", "* * * * *", "channels.sweep"),
)


def install_system_schedules(db: Database, timezone: str) -> None:
    with db.transaction(Scope.unscoped_system()) as session:
        for name, cron, task in SYSTEM_SCHEDULES:
            ensure_schedule(session, name=name, cron=cron, task=task, timezone=timezone)


def start_background(db: Database, settings: Settings, stop: threading.Event) -> list[threading.Thread]:
    load_task_modules(settings.task_modules)
    install_system_schedules(db, settings.timezone)
    threads = [threading.Thread(target=run_scheduler, args=(db, stop), name="siyu-scheduler", daemon=True)]
    for i in range(settings.workers_in_process):
        worker = Worker(
            db, lease_seconds=settings.job_lease_seconds, poll_seconds=settings.job_poll_seconds, settings=settings
        )
        threads.append(threading.Thread(target=worker.run_forever, args=(stop,), name=f"siyu-worker-{i}", daemon=True))
    for thread in threads:
        thread.start()
    return threads
