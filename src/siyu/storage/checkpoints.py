"""WAL checkpoints for SQLite, on a thread of their own.

Left to itself, SQLite checkpoints inside the commit that grows the WAL past 1,000 pages: that
commit copies them all into the database file and syncs it — 10 to 30 ms, at times far more —
while every other writer waits for the turn, and the requests of the committing writer's next
group wait too. Here connections never checkpoint on their own (``wal_autocheckpoint=0``). A
commit only signals :class:`Checkpointer`, whose thread runs a passive checkpoint on its own
connection at most every ``CHECKPOINT_INTERVAL_S``. A passive checkpoint neither waits for nor
blocks readers and writers; once it has copied everything, the next writer starts the WAL again
from its beginning, so the WAL stays small.

Under a steady stream of commits a passive checkpoint rarely finds the WAL fully copied with no
writer about to append, and only then does SQLite start the WAL again: it would grow without end
(a gigabyte in minutes at thousands of events a second). Once the WAL holds more than
``WAL_LIMIT_BYTES`` the thread takes the write turn — no writer is then between BEGIN and
COMMIT — and runs a restarting checkpoint: it copies what the passive one left, waits briefly for
readers still reading the WAL, and so makes the next writer start the WAL from its beginning,
cutting its file back to that size (connections run with ``journal_size_limit``). If a long
reader keeps it waiting, it gives the turn back at once and tries again ``RETRY_RESTART_S``
later.

The thread exits after ``IDLE_S`` without commits and when its engine is disposed; the next
commit starts another.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

from siyu.storage.writeturn import WriteTurn

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 0.2
IDLE_S = 30.0
WAL_LIMIT_BYTES = 256 * 1024 * 1024
RETRY_RESTART_S = 10.0
RESTART_BUSY_MS = 100  # how long restarting waits for readers, holding the write turn
TURN_WAIT_S = 5.0
BUSY_WARNING_S = 60.0  # checkpoints finding the database locked this long are worth a warning


class Checkpointer:
    """``wanted()`` after each commit; ``stop()`` when the engine is disposed."""

    def __init__(self, database: str, turn: WriteTurn | None = None) -> None:
        self._database = database
        self._turn = turn  # the writers' turn: without it, the WAL is not started again here
        self._restart_after = 0.0  # monotonic time before which restarting is not tried again
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def wanted(self) -> None:
        self._wanted.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._lock:  # none yet, exited when idle, or lost in a fork: start one
            if (self._thread is None or not self._thread.is_alive()) and not self._stopping.is_set():
                self._thread = threading.Thread(target=self._run, name="siyu-wal-checkpoint", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Stop the thread, after the checkpoint it may be running; a later commit starts another."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping.set()
        self._wanted.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._wanted.clear()
        self._stopping.clear()

    def _run(self) -> None:
        connection = self._connect()
        connection.execute(f"PRAGMA busy_timeout={RESTART_BUSY_MS}")
        frame_bytes = int(connection.execute("PRAGMA page_size").fetchone()[0]) + 24
        busy_since: float | None = None  # when checkpoints began to find the database locked
        try:
            while self._next():
                # Commits arriving meanwhile are copied by this same checkpoint.
                self._stopping.wait(CHECKPOINT_INTERVAL_S)
                self._wanted.clear()
                try:
                    _busy, frames, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames * frame_bytes > WAL_LIMIT_BYTES and self._may_restart():
                        self._restart(connection)
                    busy_since = None
                except sqlite3.OperationalError as exc:  # the commits stand; the next checkpoint copies them
                    busy_since = self._failed(exc, busy_since)
                except sqlite3.Error:
                    log.warning("WAL checkpoint of %s failed", self._database, exc_info=True)
        finally:
            connection.close()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(
            self._database, isolation_level=None, check_same_thread=False, uri=self._database.startswith("file:")
        )

    def _failed(self, exc: sqlite3.OperationalError, busy_since: float | None) -> float | None:
        """A checkpoint failed. Finding the database locked (another connection holding a lock the
        checkpoint needs just then) is routine and said only once it lasts ``BUSY_WARNING_S``;
        other errors are said at once. Returns when being locked began."""
        if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            log.warning("WAL checkpoint of %s failed", self._database, exc_info=True)
            return busy_since
        now = time.monotonic()
        if busy_since is None:
            log.debug("WAL checkpoint of %s found the database locked; trying again", self._database)
            return now
        if now - busy_since >= BUSY_WARNING_S:
            log.warning(
                "WAL checkpoints of %s have found the database locked for %.0f s", self._database, now - busy_since
            )
            return now  # said again if it lasts as long again
        return busy_since

    def _may_restart(self) -> bool:
        return self._turn is not None and time.monotonic() >= self._restart_after

    def _restart(self, connection: sqlite3.Connection) -> None:
        assert self._turn is not None
        if not self._turn.acquire(timeout=TURN_WAIT_S):
            return
        try:
            busy, _frames, _copied = connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        finally:
            self._turn.release()
        if busy:  # a reader still reads the WAL: leave it be for a while
            self._restart_after = time.monotonic() + RETRY_RESTART_S
            log.info("WAL of %s not started again: a reader is still using it", self._database)

    def _next(self) -> bool:
        """Wait for a commit; False to stop (disposed, or idle for ``IDLE_S``)."""
        while not self._stopping.is_set():
            if self._wanted.wait(IDLE_S):
                return not self._stopping.is_set()
            with self._lock:
                if not self._wanted.is_set():  # a commit now starts another thread
                    self._thread = None
                    return False
        return False
