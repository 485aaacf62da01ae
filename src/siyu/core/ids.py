"""Time-sortable string ids in the ULID layout: 48-bit milliseconds then 80 random bits, as 26
Crockford base32 characters. Sortable ids make cursor pagination by primary key follow creation
order. Bulk paths mint millions of ids (job timers), so encoding uses a 10-bit lookup table.

Within a process ids are monotonic, as in ULID's monotonic mode: an id minted in the same
millisecond as the last one (or, should the clock step back, earlier) takes the last one's time
and its random part plus one, so "older" is never decided by a coin toss between two ids of one
millisecond (the oldest profile survives a merge, for one).
"""

from __future__ import annotations

import os
import random
import threading
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 1024 entries: 10 bits -> 2 chars
_SHIFTS = tuple(range(120, -1, -10))
# Ids need to be unique, not secret (tokens come from `secrets`); a per-process generator seeded
# from the OS is fast, and is reseeded in forked children so they never share a sequence.
_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


_head: tuple[int, str] = (-1, "")


def _time_part(ms: int) -> str:
    """The first 10 characters (48-bit milliseconds), computed once per millisecond."""
    global _head
    if _head[0] != ms:
        value = ms << 80
        _head = (ms, "".join([_PAIRS[(value >> s) & 1023] for s in _SHIFTS[:5]]))
    return _head[1]


_last = [-1, 0]  # the last id's milliseconds and random part
_lock = threading.Lock()
_RANDOM_MAX = (1 << 80) - 1


def _after_fork() -> None:
    """A forked child starts its own sequence, with a lock no thread of the parent may hold."""
    global _lock
    _lock = threading.Lock()
    _last[0] = -1


os.register_at_fork(after_in_child=_after_fork)


def new_id(prefix: str = "") -> str:
    """A new 26-character id, optionally prefixed (``ws_01J…``), after every id this process minted."""
    ms = time.time_ns() // 1_000_000
    with _lock:
        if ms <= _last[0]:
            ms, r = _last[0], _last[1] + 1
            if r > _RANDOM_MAX:  # 2**80 ids in one millisecond: borrow the next one
                ms, r = ms + 1, 0
        else:
            r = _random.getrandbits(80)
        _last[0], _last[1] = ms, r
    p = _PAIRS  # the last 16 characters, 10 bits per lookup
    return (
        prefix
        + _time_part(ms)
        + p[r >> 70]
        + p[(r >> 60) & 1023]
        + p[(r >> 50) & 1023]
        + p[(r >> 40) & 1023]
        + p[(r >> 30) & 1023]
        + p[(r >> 20) & 1023]
        + p[(r >> 10) & 1023]
        + p[r & 1023]
    )


def id_floor(prefix: str, ms: int) -> str:
    """The smallest id of ``prefix`` minted at millisecond ``ms`` or later: ids above it were
    minted then or after (for reading rows by when their id was minted)."""
    return prefix + _time_part(ms) + "0" * 16
