"""Group commit for the event API: events from many concurrent requests share one transaction.

A commit costs the same for one event as for a thousand, and per-event work is cheapest in bulk,
so requests hand their events to one writer thread per process and wait. While the writer
commits a group, the next one gathers; under load groups grow, when idle each request commits
alone at once. A request is answered only after the transaction holding its events committed,
so a 200 still means the events are on disk. If a group fails, its requests are retried one by
one, so a bad request fails alone. Requests waiting on an event loop are answered with one wake-up
of their loop per group, not one per request.

Requests from an event loop hand over their events unparsed: the writer parses and prepares a
group before it waits for its turn to write. With several server processes on one SQLite file,
one process's writer parses while another's writes; and the event loop, left with network work
only, rarely holds the interpreter lock while the writer steps through SQLite (each step lets
go of the lock, and getting it back from a thread busy parsing can take a whole switch interval).

While a writer waits for SQLite's write turn, more requests arrive. Once it has the turn it takes
the small ones along (parsing them then costs little), so the group grows by what queued during
the wait and the fixed cost of a transaction is shared by more events. Large requests wait for
the next group, to be parsed before its turn. A large group also reads, before its turn, which of
its events are new and — when they teach the identity graph nothing — whom they are about (see
``LookedUp``), so that the turn is held for writing only. (On PostgreSQL there is no turn to wait
for before writing: see ``store_prepared``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from siyu.ingest.contracts import IncomingEvent
from siyu.ingest.events import PreparedEvent, look_up, prepare_events, store_prepared, take_write_turn
from siyu.storage.planner import refresh_statistics
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

log = logging.getLogger(__name__)

MAX_GROUP_EVENTS = 2000
LATE_REQUEST_EVENTS = 20  # requests up to this size join a group after its turn began
LOOK_AHEAD_EVENTS = 100  # SQLite: groups this large read what they can before the write turn
STATISTICS_FIRST_AT = 1_000  # new events stored before the first refresh of planner statistics


@dataclass
class _Request:
    workspace_id: str
    events: list[PreparedEvent]
    done: Future[int] | None = None  # a thread waits on this
    waiting: asyncio.Future[Stored] | None = None  # or an event loop on this
    parse: Callable[[], Sequence[IncomingEvent]] | None = None  # events still to parse
    received_at: datetime | None = None
    size: int = 0  # events, or an estimate while unparsed


@dataclass(frozen=True)
class Stored:
    accepted: int  # events the request held
    new: int  # of which not seen before


_Outcome = tuple[asyncio.Future[Stored], Stored | None, BaseException | None]


class EventWriter:
    """``submit`` returns a future of how many of the request's events were new."""

    def __init__(
        self, db: Database, max_group_events: int = MAX_GROUP_EVENTS, statistics_at: int = STATISTICS_FIRST_AT
    ) -> None:
        self._db = db
        self._max = max_group_events
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Request | None] | None = None
        self._thread: threading.Thread | None = None
        self._stored = 0  # new events this writer stored
        self._statistics_at = statistics_at  # the next refresh, when stored reaches it
        self._statistics: threading.Thread | None = None

    def submit(self, workspace_id: str, events: Sequence[IncomingEvent], received_at: datetime) -> Future[int]:
        # What needs no database is done here, by the request, while the writer writes.
        try:
            request = _Request(workspace_id, prepare_events(events, received_at), done=Future())
        except Exception as exc:  # e.g. a value JSON cannot hold: this request fails alone
            failed: Future[int] = Future()
            failed.set_exception(exc)
            return failed
        self._enqueue(request)
        assert request.done is not None
        return request.done

    async def store(
        self,
        workspace_id: str,
        parse: Callable[[], Sequence[IncomingEvent]],
        received_at: datetime,
        size: int = 1,
    ) -> Stored:
        """As :meth:`submit`, for a caller on an event loop, which hands over ``parse`` (about
        ``size`` events) instead of the events: it runs on the writer thread, and what it raises
        fails this request alone."""
        waiting: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._enqueue(
            _Request(workspace_id, [], waiting=waiting, parse=parse, received_at=received_at, size=max(size, 1))
        )
        return await waiting

    def _enqueue(self, request: _Request) -> None:
        with self._lock:
            if self._queue is None:  # started on first use, again after a stop
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._run, args=(self._queue,), name="siyu-event-writer", daemon=True
                )
                self._thread.start()
            self._queue.put(request)

    def stop(self, timeout: float = 30) -> None:
        """Finish what was submitted, then stop the thread."""
        with self._lock:
            pending, thread = self._queue, self._thread
            self._queue = self._thread = None
        if pending is not None and thread is not None:
            pending.put(None)
            thread.join(timeout)
        statistics = self._statistics
        if statistics is not None:
            statistics.join(timeout)

    def _grew(self, new: int) -> None:
        """Count new events; refresh the planner statistics each time the count reaches the next
        mark (unless the last refresh is still running)."""
        self._stored += new
        if self._stored < self._statistics_at or (self._statistics is not None and self._statistics.is_alive()):
            return
        while self._statistics_at <= self._stored:
            self._statistics_at *= 10
        self._statistics = threading.Thread(target=self._refresh, name="siyu-event-statistics", daemon=True)
        self._statistics.start()

    def _refresh(self) -> None:
        try:
            refresh_statistics(self._db.engine)
        except Exception:  # the events are stored; the hourly refresh tries again
            log.exception("refreshing planner statistics failed")

    def _run(self, pending: queue.SimpleQueue[_Request | None]) -> None:
        backlog: deque[_Request | None] = deque()  # taken from the queue, for the next group
        stopping = False  # once set, only what was taken from the queue is left to write

        def take(block: bool) -> _Request | None:
            if backlog:
                return backlog.popleft()
            if stopping:
                return None
            return pending.get() if block else pending.get_nowait()

        while True:
            first = take(block=True)
            if first is None:
                return
            group, size = [first], _size(first)
            while size < self._max:
                try:
                    nxt = take(block=False)
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                group.append(nxt)
                size += _size(nxt)
            outcomes: list[_Outcome] = []
            late = _Late(pending, backlog, outcomes) if size < self._max and not stopping else None
            try:
                by_workspace: dict[str, list[_Request]] = {}
                for request in group:
                    if request.parse is None or _parsed(request, outcomes):
                        by_workspace.setdefault(request.workspace_id, []).append(request)
                for requests in by_workspace.values():
                    self._write(requests, outcomes, late if len(by_workspace) == 1 else None)
            except Exception as exc:  # a fault of the writer itself: fail the group, keep writing
                log.exception("the event writer failed a group of %d requests", len(group))
                for request in [*group, *(late.joined if late else ())]:
                    _settle(request, None, exc, outcomes)
            _answer(outcomes)
            stopping = stopping or (late is not None and late.stopping)

    def _write(
        self,
        requests: list[_Request],
        outcomes: list[_Outcome],
        late: _Late | None = None,
    ) -> None:
        workspace_id = requests[0].workspace_id
        scope = Scope.workspace(workspace_id)
        try:
            events = [e for r in requests for e in r.events]
            looked = None
            if len(events) >= LOOK_AHEAD_EVENTS and self._db.engine.dialect.name == "sqlite":
                with self._db.read(scope) as reading:  # before the write turn: see LookedUp
                    looked = look_up(reading, events)
            with self._db.keyed_transaction(scope) as scoped:
                if late is not None:
                    take_write_turn(scoped)
                    joined = late.take(workspace_id, self._max - len(events))
                    if joined:  # what was looked up was for the group without them
                        requests, looked = requests + joined, None
                        events += [e for r in joined for e in r.events]
                stored = store_prepared(scoped, events, looked)
        except Exception as exc:
            if len(requests) == 1:
                log.exception("storing %d events failed", len(requests[0].events))
                _settle(requests[0], None, exc, outcomes)
                return
            for request in requests:  # find the request at fault; the others still succeed
                self._write([request], outcomes)
            return
        self._grew(len(stored))
        # A messageId repeated across requests of the group counts for the first of them.
        for request in requests:
            mine = {e.event.message_id for e in request.events} & stored
            stored -= mine
            _settle(request, len(mine), None, outcomes)


class _Late:
    """Requests queued after a group was taken, for the writer that now holds its turn."""

    def __init__(
        self,
        pending: queue.SimpleQueue[_Request | None],
        backlog: deque[_Request | None],
        outcomes: list[_Outcome],
    ) -> None:
        self._pending, self._backlog, self._outcomes = pending, backlog, outcomes
        self.stopping = False
        self.joined: list[_Request] = []  # the requests taken

    def take(self, workspace_id: str, room: int) -> list[_Request]:
        """Small requests for ``workspace_id``, parsed, up to ``room`` events; the others are kept
        for the next group."""
        joined: list[_Request] = []
        self.joined = joined
        while not self.stopping:
            try:
                nxt = self._pending.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                self.stopping = True
            elif nxt.workspace_id == workspace_id and _size(nxt) <= min(room, LATE_REQUEST_EVENTS):
                if nxt.parse is None or _parsed(nxt, self._outcomes):
                    joined.append(nxt)
                    room -= len(nxt.events)
            else:
                self._backlog.append(nxt)
        return joined


def _size(request: _Request) -> int:
    return len(request.events) if request.parse is None else request.size


def _parsed(request: _Request, outcomes: list[_Outcome]) -> bool:
    """Parse and prepare the request's events; False (and the request answered with the error)
    when that fails."""
    assert request.parse is not None and request.received_at is not None
    try:
        request.events = prepare_events(request.parse(), request.received_at)
    except Exception as exc:  # invalid calls, values JSON cannot hold: this request fails alone
        _settle(request, None, exc, outcomes)
        return False
    request.parse = None
    return True


def _settle(request: _Request, result: int | None, error: BaseException | None, outcomes: list[_Outcome]) -> None:
    """Answer the request (once: a request already answered keeps its answer)."""
    if request.waiting is not None:
        outcomes.append((request.waiting, None if result is None else Stored(len(request.events), result), error))
    elif request.done is not None and not request.done.done():
        if error is not None:
            request.done.set_exception(error)
        else:
            request.done.set_result(result or 0)


def _answer(outcomes: list[_Outcome]) -> None:
    """Hand each event loop its requests' outcomes in one call."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
    for loop, mine in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_resolve, mine)


def _resolve(outcomes: list[_Outcome]) -> None:
    for waiting, result, error in outcomes:
        if waiting.done():  # the request was cancelled (its client went away)
            continue
        if error is not None:
            waiting.set_exception(error)
        elif result is not None:
            waiting.set_result(result)
