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


def new_id(prefix: str = "") -> str:
    """A new 26-character id, optionally prefixed (``ws_01J…``)."""
    value = ((time.time_ns() // 1_000_000) << 80) | _random.getrandbits(80)
    return prefix + "".join([_PAIRS[(value >> s) & 1023] for s in _SHIFTS])
