"""Workers: claim a job, keep its lease alive while it runs, record the outcome.

A worker that dies (kill -9, power loss) simply stops renewing its lease; the job becomes
claimable again when the lease expires, so every job runs to completion at least once. Handlers
make their effects idempotent (ledger keys) so that a re-run changes nothing twice.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from collections.abc import Sequence

from siyu.core.ids import new_id
from siyu.core.settings import Settings, get_settings
from siyu.jobs import queue
from siyu.jobs.contracts import ClaimedJob
from siyu.jobs.errors import RetryLater, UnknownTaskError
from siyu.jobs.registry import TaskContext, handler_for, load_task_modules
from siyu.jobs.scheduler import fire_due_schedules
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

log = logging.getLogger("siyu.jobs")
SYSTEM = Scope.unscoped_system()


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"


class Worker:
    def __init__(
        self,
        db: Database,
        *,
        lease_seconds: float = 60,
        poll_seconds: float = 1.0,
        queues: Sequence[str] | None = None,
        worker_id: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        load_task_modules()  # every worker can run the built-in tasks
        self.db = db
        self.settings = settings or get_settings()
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.queues = queues
        self.worker_id = worker_id or new_worker_id()

    def run_once(self) -> bool:
        """Claim and run one job. Returns False when nothing was due."""
        with self.db.transaction(SYSTEM) as session:
            claimed = queue.claim(
                session,
                worker_id=self.worker_id,
                lease_seconds=self.lease_seconds,
                limit=1,
                queues=self.queues,
            )
        if not claimed:
            return False
        self._run(claimed[0])
        return True

    def run_until_idle(self, max_jobs: int = 10_000) -> int:
        done = 0
        while done < max_jobs and self.run_once():
            done += 1
        return done

    def run_forever(self, stop: threading.Event) -> None:
        log.info("worker %s started", self.worker_id)
        while not stop.is_set():
            try:
                if not self.run_once():
                    stop.wait(self.poll_seconds)
            except Exception:  # keep the worker alive through database hiccups
                log.exception("worker %s: claim loop error", self.worker_id)
                stop.wait(self.poll_seconds)
        log.info("worker %s stopped", self.worker_id)

    def _run(self, job: ClaimedJob) -> None:
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job.id, done), daemon=True)
        beat.start()
        try:
            handler = handler_for(job.task)
            handler(TaskContext(job.id, job.workspace_id, job.attempts, self.db, self.settings), job.payload)
        except RetryLater as later:
            self._record_failure(job, str(later), later.delay_seconds, count_attempt=False)
        except UnknownTaskError as exc:
            self._record_failure(job, exc.message, None)
        except Exception as exc:
            log.warning("job %s (%s) failed: %s", job.id, job.task, exc)
            self._record_failure(job, "".join(traceback.format_exception(exc)), None)
        else:
            with self.db.transaction(SYSTEM) as session:
                if not queue.complete(session, job_id=job.id, worker_id=self.worker_id):
                    log.warning("job %s finished after its lease was lost", job.id)
        finally:
            done.set()
            beat.join()

    def _record_failure(self, job: ClaimedJob, error: str, delay: float | None, count_attempt: bool = True) -> None:
        with self.db.transaction(SYSTEM) as session:
            queue.fail(
                session,
                job=job,
                worker_id=self.worker_id,
                error=error,
                delay_seconds=delay,
                count_attempt=count_attempt,
            )

    def _heartbeat(self, job_id: str, done: threading.Event) -> None:
        interval = max(self.lease_seconds / 3, 0.05)
        while not done.wait(interval):
            try:
                with self.db.transaction(SYSTEM) as session:
                    queue.extend_lease(
                        session,
                        job_id=job_id,
                        worker_id=self.worker_id,
                        lease_seconds=self.lease_seconds,
                    )
            except Exception:
                log.exception("could not extend lease of job %s", job_id)


def run_scheduler(db: Database, stop: threading.Event, tick_seconds: float = 5.0) -> None:
    """Fire due cron schedules until stopped. Safe to run in several processes at once."""
    while not stop.is_set():
        try:
            with db.transaction(SYSTEM) as session:
                fire_due_schedules(session)
        except Exception:
            log.exception("scheduler tick failed")
        stop.wait(tick_seconds)
