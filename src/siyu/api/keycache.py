"""API keys recently seen by this process, so the event API does not read the key table on each
of thousands of requests a second.

An entry lives one second. A key revoked through this process is forgotten at once; other
processes of the deployment refuse it within the second. When an entry expires under load, one
request reads the key again while the others wait for it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from siyu.accounts import auth
from siyu.accounts.contracts import Principal
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

TTL_S = 1.0
MAX_ENTRIES = 10_000


class KeyCache:
    def __init__(self, ttl_s: float = TTL_S) -> None:
        self._ttl = ttl_s
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def get(self, token: str, ip: str | None) -> Principal | None:
        entry = self._entries.get(token)
        if entry is None or entry[0] < time.monotonic():
            return None
        principal = entry[1]
        return principal if principal.ip == ip else replace(principal, ip=ip)

    def put(self, token: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[token] = (time.monotonic() + self._ttl, replace(principal, key_use_stale=False))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def loading(self, token: str) -> threading.Lock:
        """Held while one thread reads a key, so that the requests waiting on an expired entry
        read the key table once, not once each."""
        with self._lock:
            if len(self._loading) >= MAX_ENTRIES:
                self._loading.clear()
            return self._loading.setdefault(token, threading.Lock())


def lookup_key(db: Database, keys: KeyCache, token: str, ip: str | None) -> Principal:
    """The key's principal, from this process's cache or the key table (without the write lock);
    the key's last use is recorded at most once a minute."""
    cached = keys.get(token, ip)
    if cached is not None:
        return cached
    with keys.loading(token):
        cached = keys.get(token, ip)  # another request may have read it meanwhile
        if cached is not None:
            return cached
        with db.read(Scope.unscoped_system()) as system:
            principal = auth.api_key_principal(system, token=token, ip=ip)
        if principal.key_use_stale and principal.api_key_id:
            with db.transaction(Scope.unscoped_system()) as system:
                auth.touch_api_key(system, principal.api_key_id)
        keys.put(token, principal)
        return principal
