"""Event ingestion through the Segment-compatible API: single events/s with latency
percentiles, batched events/s, and identity resolution's own per-event latency.

    python bench/ingest_events.py [--database-url URL] [--single 3000] [--batches 60] [--clients 4]

Runs a real server (uvicorn, one process as `siyu serve`) on a fresh database and drives it from
client threads over loopback. Events carry realistic identifiers (anonymous ids, user ids, phones),
so every event goes through identity resolution in its transaction.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from siyu.accounts import facade
from siyu.accounts.contracts import KeyScope, Principal, Role
from siyu.api.app import create_app
from siyu.core.settings import Settings
from siyu.storage import migrate
from siyu.storage.scoping import Scope
from siyu.storage.session import Database


def event(i: int) -> dict[str, object]:
    person = i % 5000
    if i % 3 == 0:
        return {
            "type": "identify",
            "userId": f"u{person}",
            "anonymousId": f"a{person}",
            "traits": {"phone": f"138{person:08d}"},
            "messageId": f"m{i}",
        }
    return {
        "type": "track",
        "anonymousId": f"a{person}",
        "event": "Product Added",
        "properties": {"sku": f"SKU{i % 97}"},
        "messageId": f"m{i}",
    }


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--single", type=int, default=3000)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    db = Database(url)
    migrate.upgrade(db.engine)
    with db.transaction(Scope.unscoped_system()) as s:
        ws = facade.create_workspace(s, name="bench", slug=f"bench-{int(time.time())}")
    with db.transaction(Scope.workspace(ws.id)) as s:
        key = facade.create_api_key(
            s, Principal(workspace_id=ws.id, role=Role.OWNER), name="b", scope=KeyScope.INGEST
        ).token
    settings = Settings(environment="test", secret_key="b" * 40, database_url=url, workers_in_process=0)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, db), port=8791, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    latencies: list[float] = []
    lock = threading.Lock()

    def single_client(offset: int) -> None:
        with httpx.Client(base_url="http://127.0.0.1:8791", headers=auth) as c:
            for i in range(offset, args.single, args.clients):
                body = event(i)
                path = "/v1/" + str(body.pop("type"))
                t0 = time.perf_counter()
                r = c.post(path, json=body)
                elapsed = (time.perf_counter() - t0) * 1000
                assert r.status_code == 200, r.text
                with lock:
                    latencies.append(elapsed)

    started = time.perf_counter()
    threads = [threading.Thread(target=single_client, args=(k,)) for k in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    single_s = time.perf_counter() - started

    def batch_client(offset: int) -> None:
        with httpx.Client(base_url="http://127.0.0.1:8791", headers=auth, timeout=60) as c:
            for b in range(offset, args.batches, args.clients):
                base = 1_000_000 + b * args.batch_size
                r = c.post("/v1/batch", json={"batch": [event(base + j) for j in range(args.batch_size)]})
                assert r.status_code == 200 and r.json()["accepted"] == args.batch_size, r.text

    started = time.perf_counter()
    threads = [threading.Thread(target=batch_client, args=(k,)) for k in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batch_s = time.perf_counter() - started
    server.should_exit = True
    n_batch = args.batches * args.batch_size
    print(f"backend {db.engine.dialect.name}, {args.clients} client threads")
    print(
        f"single: {args.single / single_s:,.0f} events/s; latency p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {pct(latencies, 0.99):.1f} ms"
    )
    print(f"batched ({args.batch_size}/request): {n_batch / batch_s:,.0f} events/s")


if __name__ == "__main__":
    main()
