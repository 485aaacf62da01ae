"""Group commit for the event API: events from many concurrent requests share one transaction.

A commit costs the same for one event as for a thousand, and per-event work is cheapest in bulk,
so requests hand their events to one writer thread per process and wait. While the writer
commits a group, the next one gathers; under load groups grow, when idle each request commits
alone at once. A request is answered only after the transaction holding its events committed,
so a 200 still means the events are on disk. If a group fails, its requests are retried one by
one, so a bad request fails alone.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime

from siyu.ingest.contracts import IncomingEvent
from siyu.ingest.events import PreparedEvent, prepare_events, store_prepared
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

log = logging.getLogger(__name__)

MAX_GROUP_EVENTS = 2000


@dataclass
class _Request:
    workspace_id: str
    events: list[PreparedEvent]
    done: Future[int] = field(default_factory=Future)


class EventWriter:
    """``submit`` returns a future of how many of the request's events were new."""

    def __init__(self, db: Database, max_group_events: int = MAX_GROUP_EVENTS) -> None:
        self._db = db
        self._max = max_group_events
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Request | None] | None = None
        self._thread: threading.Thread | None = None

    def submit(self, workspace_id: str, events: Sequence[IncomingEvent], received_at: datetime) -> Future[int]:
        # What needs no database is done here, by the request, while the writer writes.
        try:
            request = _Request(workspace_id, prepare_events(events, received_at))
        except Exception as exc:  # e.g. a value JSON cannot hold: this request fails alone
            failed: Future[int] = Future()
            failed.set_exception(exc)
            return failed
        with self._lock:
            if self._queue is None:  # started on first use, again after a stop
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._run, args=(self._queue,), name="siyu-event-writer", daemon=True
                )
                self._thread.start()
            self._queue.put(request)
        return request.done

    def stop(self, timeout: float = 30) -> None:
        """Finish what was submitted, then stop the thread."""
        with self._lock:
            pending, thread = self._queue, self._thread
            self._queue = self._thread = None
        if pending is not None and thread is not None:
            pending.put(None)
            thread.join(timeout)

    def _run(self, pending: queue.SimpleQueue[_Request | None]) -> None:
        while True:
            first = pending.get()
            if first is None:
                return
            group, size, stopping = [first], len(first.events), False
            while size < self._max:
                try:
                    nxt = pending.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                group.append(nxt)
                size += len(nxt.events)
            by_workspace: dict[str, list[_Request]] = {}
            for request in group:
                by_workspace.setdefault(request.workspace_id, []).append(request)
            for requests in by_workspace.values():
                self._write(requests)
            if stopping:
                return

    def _write(self, requests: list[_Request]) -> None:
        try:
            with self._db.transaction(Scope.workspace(requests[0].workspace_id)) as scoped:
                stored = store_prepared(scoped, [e for r in requests for e in r.events])
        except Exception as exc:
            if len(requests) == 1:
                log.exception("storing %d events failed", len(requests[0].events))
                requests[0].done.set_exception(exc)
                return
            for request in requests:  # find the request at fault; the others still succeed
                self._write([request])
            return
        # A messageId repeated across requests of the group counts for the first of them.
        for request in requests:
            mine = {e.event.message_id for e in request.events} & stored
            stored -= mine
            request.done.set_result(len(mine))
