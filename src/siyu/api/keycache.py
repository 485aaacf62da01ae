"""API keys recently seen by this process, so the event API does not read the key table on each
of thousands of requests a second.

An entry lives one second. A key revoked through this process is forgotten at once; other
processes of the deployment refuse it within the second.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from siyu.accounts.contracts import Principal
from siyu.accounts.tokens import hash_token

TTL_S = 1.0
MAX_ENTRIES = 10_000


class KeyCache:
    def __init__(self, ttl_s: float = TTL_S) -> None:
        self._ttl = ttl_s
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, token: str, ip: str | None) -> Principal | None:
        entry = self._entries.get(hash_token(token))
        if entry is None or entry[0] < time.monotonic():
            return None
        return replace(entry[1], ip=ip, key_use_stale=False)

    def put(self, token: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[hash_token(token)] = (time.monotonic() + self._ttl, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
