"""Time-sortable string ids (ULID layout: 48-bit milliseconds + 80 random bits, Crockford base32).

Sortable ids make cursor pagination by primary key follow creation order.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str = "") -> str:
    """A new 26-character id, optionally prefixed (``ws_01J…``)."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    return prefix + _encode(millis, 10) + _encode(rand, 16)
