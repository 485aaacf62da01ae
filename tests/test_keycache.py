"""The per-process cache of API keys: one read of the key table per expiry, however many requests
wait on it, and a revoked key forgotten at once."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from siyu.accounts import auth
from siyu.api import keycache
from siyu.api.keycache import KeyCache, lookup_key
from siyu.storage.session import Database
from tests.conftest import make_actor


def test_requests_waiting_on_an_expired_key_read_the_key_table_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = make_actor(db, "acme")
    reads: list[str] = []
    real = auth.api_key_principal

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(kwargs["token"])
        return real(*args, **kwargs)

    monkeypatch.setattr(keycache.auth, "api_key_principal", counted)
    cache = KeyCache(ttl_s=60)
    start = threading.Barrier(16)
    found = []

    def request(ip: str) -> None:
        start.wait()
        found.append(lookup_key(db, cache, a.ingest_key, ip))

    threads = [threading.Thread(target=request, args=(f"10.0.0.{n % 2}",)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(reads) == 1
    assert len(found) == 16 and {p.workspace_id for p in found} == {a.workspace_id}
    assert {p.ip for p in found} == {"10.0.0.0", "10.0.0.1"}  # each request keeps its own address
    cache.clear()
    lookup_key(db, cache, a.ingest_key, None)
    assert len(reads) == 2
