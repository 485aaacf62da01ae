"""SQLite writers take turns across processes: a second process waits while one writes, starts as
soon as the turn is released — once the last commit is done — and gives up at its timeout. The
WAL is checkpointed beside the commits, by a thread of its own."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from siyu.storage import checkpoints
from siyu.storage.engine import make_engine
from siyu.storage.writeturn import WriteTurn

_TRY = (
    "import sys, time; from siyu.storage.writeturn import WriteTurn; t = WriteTurn(sys.argv[1]); "
    "s = time.monotonic(); got = t.acquire(float(sys.argv[2])); print(got, round(time.monotonic() - s, 3))"
)


def _other_process(database: Path, timeout: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _TRY, str(database), str(timeout)], stdout=subprocess.PIPE, text=True
    )


def test_another_process_waits_for_the_turn_and_takes_it_once_released(tmp_path: Path) -> None:
    database = tmp_path / "siyu.db"
    turn = WriteTurn(str(database))
    assert turn.acquire(timeout=1)
    refused = _other_process(database, 0.3)
    got, _waited = refused.communicate(timeout=30)[0].split()
    assert got == "False"
    waiting = _other_process(database, 20)
    time.sleep(1.0)
    turn.release()
    got, waited = waiting.communicate(timeout=30)[0].split()
    assert got == "True" and 0.5 < float(waited) < 10


def test_threads_of_one_process_take_turns_too(tmp_path: Path) -> None:
    turn = WriteTurn(str(tmp_path / "siyu.db"))
    assert turn.acquire(timeout=1)
    assert not turn.acquire(timeout=0.1)
    turn.release()
    assert turn.acquire(timeout=0.1)
    turn.release()


def _engines_on(database: Path, count: int) -> list[Engine]:
    """Engines on one file, as separate processes would have them: each with a turn of its own
    (they exclude each other through the lock file) and SQLite's busy handler off, so that a
    writer finding the database locked fails at once instead of sleeping."""
    engines = [make_engine(f"sqlite:///{database}") for _ in range(count)]
    for engine in engines:
        event.listen(engine, "connect", lambda c, _r: c.execute("PRAGMA busy_timeout=0"))
    with engines[0].begin() as connection:
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS blobs (id INTEGER PRIMARY KEY, body BLOB)")
    return engines


def test_the_turn_passes_on_only_once_the_commit_is_done(tmp_path: Path) -> None:
    engines = _engines_on(tmp_path / "siyu.db", 2)
    failures: list[BaseException] = []

    def write(engine: Engine, size: int) -> None:
        try:
            for _ in range(40):
                with engine.begin() as connection:  # a large commit takes a while to write
                    connection.exec_driver_sql("INSERT INTO blobs (body) VALUES (?)", (b"x" * size,))
        except BaseException as exc:  # "database is locked": given the turn during a commit
            failures.append(exc)

    sizes = (2_000_000, 10)
    threads = [threading.Thread(target=write, args=pair) for pair in zip(engines, sizes, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    with engines[0].begin() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM blobs").scalar() == 80


def test_the_wal_is_checkpointed_beside_the_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoints, "CHECKPOINT_INTERVAL_S", 1.0)
    database = tmp_path / "siyu.db"
    (engine,) = _engines_on(database, 1)
    for _ in range(30):
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO blobs (body) VALUES (?)", (b"x" * 100_000,))
    # No commit copied the WAL into the database file (SQLite's own checkpoints would have,
    # every 1,000 pages, inside a commit)...
    assert database.stat().st_size < 1_000_000
    # ...the checkpoint thread does, while the writer's connection stays open.
    deadline = time.monotonic() + 20
    while database.stat().st_size < 3_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert database.stat().st_size >= 3_000_000
    engine.dispose()  # stops the checkpoint thread; the next commit starts another
    with engine.begin() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM blobs").scalar() == 30
    engine.dispose()


def test_the_wal_is_started_again_past_its_limit_while_commits_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints, "CHECKPOINT_INTERVAL_S", 0.05)
    monkeypatch.setattr(checkpoints, "WAL_LIMIT_BYTES", 1_000_000)
    database = tmp_path / "siyu.db"
    wal = tmp_path / "siyu.db-wal"
    (engine,) = _engines_on(database, 1)
    with engine.begin() as connection:  # one large transaction: a WAL of 3 MB
        for _ in range(30):
            connection.exec_driver_sql("INSERT INTO blobs (body) VALUES (?)", (b"x" * 100_000,))
    assert wal.stat().st_size >= 3_000_000
    # Steady commits, 16 MB in all: the WAL is started again each time it passes 1 MB,
    # and its file cut back to 1 MB, so it never holds much more. (SQLite alone keeps the file at
    # its largest, and starts the WAL again only when a checkpoint happens to finish between two
    # commits.)
    written, largest, commits = 0, 0, 0
    deadline = time.monotonic() + 30
    while written < 16_000_000 and time.monotonic() < deadline:
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO blobs (body) VALUES (?)", (b"y" * 20_000,))
        written, commits = written + 20_000, commits + 1
        time.sleep(0.002)  # as a writer between groups: others may take the turn
        largest = max(largest, wal.stat().st_size) if commits > 20 else largest
    assert written >= 16_000_000
    assert largest < 8_000_000
    # Once commits slow down, the file is back at the limit.
    deadline = time.monotonic() + 20
    while wal.stat().st_size > 1_000_000 and time.monotonic() < deadline:
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO blobs (body) VALUES (?)", (b"z",))
        commits += 1
        time.sleep(0.1)
    assert wal.stat().st_size <= 1_000_000
    with engine.begin() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM blobs").scalar() == 30 + commits
    engine.dispose()


def test_a_waiting_process_is_woken_when_the_turn_is_released(tmp_path: Path) -> None:
    database = tmp_path / "siyu.db"
    turn = WriteTurn(str(database))
    assert turn.acquire(timeout=1)
    # A waiter that would look again only every 5 s: just the bell can wake it sooner.
    waiter = (
        "import sys, time; import siyu.storage.writeturn as w; w._FIRST_WAIT_S = 5.0; "
        "t = w.WriteTurn(sys.argv[1]); print('waiting', flush=True); t.acquire(20); print(time.time())"
    )
    waiting = subprocess.Popen([sys.executable, "-c", waiter, str(database)], stdout=subprocess.PIPE, text=True)
    assert waiting.stdout is not None and waiting.stdout.readline().strip() == "waiting"
    time.sleep(0.5)  # it has looked once and is waiting
    released_at = time.time()
    turn.release()
    acquired_at = float(waiting.communicate(timeout=30)[0])
    assert acquired_at - released_at < 2


class _LockedAtFirst(sqlite3.Connection):
    """A checkpoint connection whose first passive checkpoints find the database locked, as when
    another process is checkpointing or recovering the WAL just then."""

    failures = 0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if "wal_checkpoint(PASSIVE)" in sql and type(self).failures > 0:
            type(self).failures -= 1
            exc = sqlite3.OperationalError("database is locked")
            exc.sqlite_errorcode = 261  # SQLITE_BUSY_RECOVERY
            raise exc
        return super().execute(sql, *args)


class _FlakyCheckpointer(checkpoints.Checkpointer):
    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._database, isolation_level=None, check_same_thread=False, factory=_LockedAtFirst)


def test_a_checkpoint_finding_the_database_locked_tries_again_and_warns_only_if_it_lasts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(checkpoints, "CHECKPOINT_INTERVAL_S", 0.02)
    caplog.set_level(logging.DEBUG, logger=checkpoints.__name__)
    database = tmp_path / "siyu.db"
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE blobs (body BLOB)")
    checkpointer = _FlakyCheckpointer(str(database))

    def commit_until(done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 20
        while not done() and time.monotonic() < deadline:
            writer.execute("INSERT INTO blobs VALUES (?)", (b"x" * 100_000,))
            checkpointer.wanted()
            time.sleep(0.03)
        assert done()

    _LockedAtFirst.failures = 3
    commit_until(lambda: _LockedAtFirst.failures == 0 and database.stat().st_size >= 1_000_000)
    # The checkpoints after the locked ones copied the WAL; being locked a moment is no warning.
    said = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert (logging.DEBUG, f"WAL checkpoint of {database} found the database locked; trying again") in said
    assert not [message for level, message in said if level >= logging.WARNING]
    # Locked for longer than BUSY_WARNING_S: that is worth a warning (without a traceback).
    monkeypatch.setattr(checkpoints, "BUSY_WARNING_S", 0.0)
    _LockedAtFirst.failures = 2
    commit_until(lambda: any(r.levelno == logging.WARNING for r in caplog.records))
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "have found the database locked for" in warning.getMessage() and warning.exc_info is None
    checkpointer.stop()
    writer.close()
