"""Time-sortable string ids in the ULID layout: 48-bit milliseconds then 80 random bits, as 26
Crockford base32 characters. Sortable ids make cursor pagination by primary key follow creation
order. Bulk paths mint millions of ids (job timers), so encoding uses a 10-bit lookup table.
"""

from __future__ import annotations

import os
import random
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


def new_id(prefix: str = "") -> str:
    """A new 26-character id, optionally prefixed (``ws_01J…``)."""
    r, p = _random.getrandbits(80), _PAIRS  # the last 16 characters, 10 bits per lookup
    return (
        prefix
        + _time_part(time.time_ns() // 1_000_000)
        + p[r >> 70]
        + p[(r >> 60) & 1023]
        + p[(r >> 50) & 1023]
        + p[(r >> 40) & 1023]
        + p[(r >> 30) & 1023]
        + p[(r >> 20) & 1023]
        + p[(r >> 10) & 1023]
        + p[r & 1023]
    )
