"""Whose turn it is to write a SQLite database, across threads and processes.

SQLite lets one transaction write at a time. Left to itself, a writer that finds the database
locked sleeps in SQLite's busy handler, whose back-off reaches 100 ms per retry: with two server
processes, each would spend most of its time asleep while the other had long finished. Writers
therefore take turns here first — a thread lock within the process, then an advisory lock on a
file beside the database across processes — and a waiting writer starts the moment the last one
commits (a writer giving up the turn rings a bell — a FIFO beside the lock file — that a waiting
writer of another process wakes to). The file lock goes with its process: a writer that dies never
keeps the turn.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from pathlib import Path
from types import ModuleType

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # pragma: no cover - not a POSIX system: threads of one process take turns
    fcntl = None

_FIRST_WAIT_S = 0.00005
_LONGEST_WAIT_S = 0.001


class WriteTurn:
    """``acquire(timeout)`` then ``release()``; one holder at a time among every process that
    opens the same database file."""

    def __init__(self, database: str | None) -> None:
        self._thread_lock = threading.Lock()
        self._path = f"{database}-turn" if database and database != ":memory:" else None
        self._fd: int | None = None
        self._bell: int | None = None
        self._pid = -1

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self._thread_lock.acquire(timeout=timeout):
            return False
        try:
            if self._lock_file(deadline):
                return True
        except BaseException:
            self._thread_lock.release()
            raise
        self._thread_lock.release()
        return False

    def release(self) -> None:
        if fcntl is not None and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            if self._bell is not None:
                with contextlib.suppress(OSError):  # full: waiters have rings left to read
                    os.write(self._bell, b"\0")
        self._thread_lock.release()

    def _lock_file(self, deadline: float) -> bool:
        if fcntl is None or self._path is None:
            return True
        fd = self._file()
        wait = _FIRST_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                self._wait(wait)
                wait = min(wait * 2, _LONGEST_WAIT_S)

    def _wait(self, seconds: float) -> None:
        """Until the turn may be free: the holder rang the bell (or an earlier holder did, with
        nobody waiting), or ``seconds`` passed."""
        if self._bell is None:
            time.sleep(seconds)
            return
        rung, _, _ = select.select([self._bell], [], [], seconds)
        if rung:
            with contextlib.suppress(BlockingIOError):  # another waiter took the ring
                os.read(self._bell, 4096)

    def _file(self) -> int:
        """The lock file's descriptor, opened again in a forked child (a lock belongs to the
        open file, which a child would otherwise share with its parent)."""
        if self._fd is None or self._pid != os.getpid():
            assert self._path is not None
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            self._bell = _open_bell(f"{self._path}-bell")
            self._pid = os.getpid()
        return self._fd


def _open_bell(path: str) -> int | None:
    """The bell: a FIFO that a writer giving up the turn writes a byte to, so that a writer of
    another process waiting for the turn wakes at once rather than at its next look (up to
    ``_LONGEST_WAIT_S`` later). None where FIFOs cannot be made: writers then only look."""
    try:
        with contextlib.suppress(FileExistsError):
            os.mkfifo(path, 0o600)
        # Read and write: opening a FIFO so never waits for the other end, and never fails.
        return os.open(path, os.O_RDWR | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, AttributeError):  # AttributeError: no os.mkfifo on this platform
        return None
