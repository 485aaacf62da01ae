"""SQLite writers take turns across processes: a second process waits while one writes, starts as
soon as the turn is released, and gives up at its timeout."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

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
