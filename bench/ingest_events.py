"""Event ingestion through the Segment-compatible API: single events/s with latency
percentiles, batched events/s, and identity resolution's own per-event latency.

    python bench/ingest_events.py [--database-url URL] [--single 20000] [--connections 64]
                                  [--batches 100] [--batch-size 500] [--batch-connections 8]

The server runs in its own process exactly as ``siyu serve`` runs it (API, scheduler and
workers; access log off), on a fresh database. The load comes from another process over
loopback: an asyncio client holding keep-alive connections, each sending its next request when
the last is answered, so latency includes queueing in the server. Events carry realistic
identifiers (anonymous ids, user ids, phones; a third of the people are new), so every event is
resolved to a person in the transaction that stores it. Each rate comes with the CPU time per
event of the server, PostgreSQL and the load generator, and how much of the machine sat idle.

As a floor, the batched events' rows alone are then written into the same event log by hand-written
driver calls (``COPY`` on PostgreSQL, ``executemany`` on SQLite; one client, a transaction per
batch, no HTTP, no identity resolution): what the database itself allows on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path

PEOPLE = 5000


def event(i: int) -> dict[str, object]:
    person = i % PEOPLE
    if i % 3 == 0:
        return {
            "type": "identify",
            "userId": f"u{person}",
            "anonymousId": f"a{person}",
            "traits": {"phone": f"138{person:08d}", "city": "杭州"},
            "messageId": f"m{i}",
        }
    return {
        "type": "track",
        "anonymousId": f"a{person}",
        "event": "Product Added",
        "properties": {"sku": f"SKU{i % 97}", "price_fen": 12900},
        "messageId": f"m{i}",
    }


class CpuMeter:
    """CPU seconds spent by the server's processes, the database server's (PostgreSQL) and this
    load generator over a window, from /proc (Linux), and the share of the machine left idle: on a
    shared machine whose speed varies, the split per event says more than the rate alone."""

    def __init__(self, server_pid: int, database_server: bool) -> None:
        self.server_pid = server_pid
        self.database_server = database_server
        self.tick = os.sysconf("SC_CLK_TCK")
        self.available = Path("/proc/stat").exists()

    def _groups(self) -> dict[str, float]:
        parents: dict[int, int] = {}
        spent: dict[int, float] = {}
        names: dict[int, str] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                raw = (entry / "stat").read_text()
            except OSError:
                continue
            name, _, rest = raw.partition(" (")[2].rpartition(")")
            fields = rest.split()
            pid = int(entry.name)
            parents[pid], spent[pid], names[pid] = int(fields[1]), (int(fields[11]) + int(fields[12])) / self.tick, name
        server = {self.server_pid}
        for _ in range(4):  # the server's workers and their children
            server |= {pid for pid, parent in parents.items() if parent in server}
        totals = {"server": 0.0, "PostgreSQL": 0.0, "load generator": spent.get(os.getpid(), 0.0)}
        for pid, seconds in spent.items():
            if pid in server:
                totals["server"] += seconds
            elif self.database_server and names[pid].startswith("postgres"):
                totals["PostgreSQL"] += seconds
        with open("/proc/stat") as stat:
            cpu = [float(v) for v in stat.readline().split()[1:]]
        totals["idle"], totals["all"] = cpu[3] / self.tick, sum(cpu[:8]) / self.tick
        return totals

    def start(self) -> None:
        self.before = self._groups() if self.available else {}

    def spent(self) -> dict[str, float]:
        after = self._groups()
        return {k: after[k] - self.before[k] for k in after}

    def report(self, events: int) -> str:
        if not self.available:
            return ""
        spent = self.spent()
        groups = ("server", "PostgreSQL", "load generator")
        parts = [f"{k} {spent[k] / events * 1e6:,.0f} µs" for k in groups if spent[k]]
        return f"; CPU per event: {', '.join(parts)}; machine idle {spent['idle'] / spent['all']:.0%}"


def connection_spread(server_pid: int, port: int) -> str:
    """How the kernel spread the open connections to ``port`` over the server's processes, most
    first (``5/3``): each process accepts the connections hashed to its socket (SO_REUSEPORT), so
    with few connections one process may get most of the work. From /proc (Linux)."""
    established: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # ESTABLISHED
                    established.add(f"socket:[{fields[9]}]")
    counts = []
    for pid in [server_pid, *_children(server_pid)]:
        with contextlib.suppress(OSError):
            held = sum(1 for fd in Path(f"/proc/{pid}/fd").iterdir() if str(fd.readlink()) in established)
            if held:
                counts.append(held)
    return "/".join(str(n) for n in sorted(counts, reverse=True)) or "unknown"


def _spread_once_accepted(server_pid: int, port: int, connections: int) -> str:
    """:func:`connection_spread` once the server has accepted every connection (or after 2 s)."""
    deadline = time.monotonic() + 2
    while True:
        spread = connection_spread(server_pid, port)
        if time.monotonic() > deadline or sum(int(n) for n in spread.split("/") if n.isdigit()) >= connections:
            return spread
        time.sleep(0.01)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def prepare(url: str) -> str:
    """Migrate a fresh database, create a workspace, return an ingest write key."""
    from siyu.accounts import facade
    from siyu.accounts.contracts import KeyScope, Principal, Role
    from siyu.storage import migrate
    from siyu.storage.scoping import Scope
    from siyu.storage.session import Database

    db = Database(url)
    migrate.upgrade(db.engine)
    with db.transaction(Scope.unscoped_system()) as s:
        ws = facade.create_workspace(s, name="bench", slug=f"bench-{time.time_ns()}")
    with db.transaction(Scope.workspace(ws.id)) as s:
        key = facade.create_api_key(s, Principal(workspace_id=ws.id, role=Role.OWNER), name="b", scope=KeyScope.INGEST)
    db.dispose()
    return key.token


def event_rows_floor(url: str, batches: int, batch_size: int) -> str:
    """Write the batched phase's events as bare event rows, by hand, into a new workspace of the same
    event log; the rate, the CPU per row of the client (SQLite's work included) and of PostgreSQL,
    and the rate those CPU costs would allow on this machine's cores."""
    from datetime import UTC, datetime

    from siyu.accounts import facade
    from siyu.core.ids import new_id
    from siyu.storage.scoping import Scope
    from siyu.storage.session import Database

    db = Database(url)
    with db.transaction(Scope.unscoped_system()) as s:
        workspace = facade.create_workspace(s, name="floor", slug=f"floor-{time.time_ns()}").id
    db.dispose()
    columns = (
        "workspace_id, id, message_id, type, event, anonymous_id, user_id, identity_id,"
        " properties, traits, context, timestamp, received_at"
    )
    postgres = url.startswith("postgresql")

    def rows(b: int) -> list[tuple[object, ...]]:
        now = datetime.now(UTC)
        when: object = now if postgres else now.replace(tzinfo=None).isoformat(" ", "microseconds")
        out: list[tuple[object, ...]] = []
        for j in range(batch_size):
            e = event(1_000_000 + b * batch_size + j)
            properties, traits = (json.dumps(e.get(k, {}), ensure_ascii=False) for k in ("properties", "traits"))
            out.append(
                (
                    workspace,
                    new_id("evt_"),
                    e["messageId"],
                    e["type"],
                    e.get("event"),
                    e.get("anonymousId"),
                    e.get("userId"),
                    new_id("idn_"),
                    properties,
                    traits,
                    "{}",
                    when,
                    when,
                )
            )
        return out

    meter = CpuMeter(os.getpid(), database_server=postgres)
    writing = 0.0  # SQLite: seconds inside the write transactions
    if postgres:
        import psycopg

        with psycopg.connect(url.replace("+psycopg", "")) as connection, connection.cursor() as cursor:
            meter.start()
            started = time.perf_counter()
            for b in range(batches):
                with cursor.copy(f"COPY events ({columns}) FROM STDIN") as copy:
                    for row in rows(b):
                        copy.write_row(row)
                connection.commit()
            elapsed = time.perf_counter() - started
            spent = meter.spent()  # before the connection's backend exits
    else:
        import sqlite3

        lite = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        lite.execute("PRAGMA synchronous=NORMAL")  # as siyu's connections (the file is in WAL mode)
        lite.execute("PRAGMA wal_autocheckpoint=0")  # no checkpoint in a commit (siyu's run beside them)
        insert = f"INSERT INTO events ({columns}) VALUES ({', '.join('?' * 13)})"
        meter.start()
        started = time.perf_counter()
        for b in range(batches):
            batch = rows(b)
            began = time.perf_counter()
            lite.execute("BEGIN IMMEDIATE")
            lite.executemany(insert, batch)
            lite.execute("COMMIT")
            writing += time.perf_counter() - began
        elapsed = time.perf_counter() - started
        spent = meter.spent()
        lite.close()
    n, cores = batches * batch_size, os.cpu_count() or 1
    head = (
        f"floor, the same events as bare rows of the event log by hand ({'COPY' if postgres else 'executemany'}, "
        f"{batch_size}/transaction, one client, no HTTP, no resolution): {n / elapsed:,.0f} rows/s; "
        f"CPU per row: client {spent['load generator'] / n * 1e6:,.0f} µs"
    )
    if postgres:
        per_row = (spent["load generator"] + spent["PostgreSQL"]) / n
        return (
            f"{head}, PostgreSQL {spent['PostgreSQL'] / n * 1e6:,.0f} µs; "
            f"so at most {cores / per_row:,.0f} rows/s on this machine's {cores} cores"
        )
    # SQLite writes one transaction at a time: the time inside them bounds every writer together.
    return f"{head}, {writing / n * 1e6:,.0f} µs of it writing; so at most {n / writing:,.0f} rows/s"


def analyze(url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()


def serve(url: str, port: int, processes: int) -> None:
    import uvicorn

    os.environ |= {
        "SIYU_ENVIRONMENT": "test",
        "SIYU_SECRET_KEY": "b" * 40,
        "SIYU_DATABASE_URL": url,
        "SIYU_DATA_DIR": tempfile.mkdtemp(),
    }
    # As `siyu serve --processes N --no-access-log` runs it.
    if processes > 1:
        from siyu.api.processes import serve_processes

        serve_processes("127.0.0.1", port, processes, access_log=False, log_level="warning")
    else:
        uvicorn.run("siyu.api.app:serving_app", factory=True, port=port, log_level="warning", access_log=False)


def request_bytes(path: str, body: dict[str, object], auth: str) -> bytes:
    payload = json.dumps(body, ensure_ascii=False).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending its next request when the last is answered: a protocol
    parsing responses as they arrive, so that the load generator takes little of the machine's
    CPU from the server it measures."""

    def __init__(self, cursor: Iterator[bytes], latencies: list[float], done: asyncio.Future[None]) -> None:
        self.cursor, self.latencies, self.done = cursor, latencies, done
        self.buffer = b""
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._send_next()

    def _send_next(self) -> None:
        raw = next(self.cursor, None)
        if raw is None:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.sent_at = time.perf_counter()
        self.transport.write(raw)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name == b"content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        body, self.buffer = self.buffer[end + 4 : end + 4 + length], self.buffer[end + 4 + length :]
        self.latencies.append((time.perf_counter() - self.sent_at) * 1000)
        if not head.startswith((b"http/1.1 200 ", b"http/1.0 200 ")):
            if not self.done.done():
                self.done.set_exception(SystemExit(f"{head[:40]!r} {body[:300]!r}"))
            self.transport.close()
            return
        self._send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or SystemExit("the server closed a connection"))


async def send_all(
    port: int, requests: list[bytes], connections: int, server_pid: int
) -> tuple[float, list[float], str]:
    """Send every request over ``connections`` keep-alive connections; returns elapsed seconds,
    per-request latencies in ms and how the connections were spread over the server's processes."""
    latencies: list[float] = []
    cursor = iter(requests)
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    waiting = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(partial(_Connection, cursor, latencies, done), "127.0.0.1", port)
        waiting.append(done)
    spreading = loop.run_in_executor(None, _spread_once_accepted, server_pid, port, connections)
    await asyncio.gather(*waiting)
    return time.perf_counter() - started, latencies, await spreading


def resolution_latency(url: str, n: int) -> dict[str, list[float]]:
    """Per-event cost of storing and resolving one event in its own transaction (in process, up to
    the commit), for events of people already known, for people the event introduces, and for
    identify calls that merge an anonymous visitor into a known user."""
    from siyu.accounts import facade
    from siyu.core.clock import utcnow
    from siyu.ingest.events import store_events
    from siyu.ingest.segment import parse_call
    from siyu.storage.scoping import Scope
    from siyu.storage.session import Database

    db = Database(url)
    with db.transaction(Scope.unscoped_system()) as s:
        ws = facade.create_workspace(s, name="resolve", slug=f"resolve-{time.time_ns()}")
    scope = Scope.workspace(ws.id)
    for start in range(0, 2 * PEOPLE, 500):  # everyone seen, two thirds identified
        now = utcnow()
        with db.transaction(scope) as s:
            store_events(s, [parse_call(event(i), now) for i in range(start, start + 500)], now)
    analyze(url)  # as autovacuum (PostgreSQL) or the hourly statistics task would by now

    def timed(bodies: Sequence[Mapping[str, object]]) -> list[float]:
        out = []
        for body in bodies:
            now = utcnow()
            e = parse_call(body, now)
            with db.keyed_transaction(scope) as s:  # as the event writer stores them
                t0 = time.perf_counter()
                store_events(s, [e], now)
                s.flush()
                out.append((time.perf_counter() - t0) * 1000)
        return out

    known = [event(10 * PEOPLE + 3 * k + 2) for k in range(n)]  # tracks of people seen before
    new = [{"type": "track", "anonymousId": f"new-{k}", "event": "Viewed", "messageId": f"n{k}"} for k in range(n)]
    visitors = [{"type": "track", "anonymousId": f"v{k}", "event": "Viewed", "messageId": f"v{k}"} for k in range(n)]
    timed(visitors)  # visitors browse anonymously, then sign in as known users:
    merges = [{"type": "identify", "userId": f"u{k}", "anonymousId": f"v{k}", "messageId": f"j{k}"} for k in range(n)]
    result = {"known person": timed(known), "new person": timed(new), "identify merging a visitor": timed(merges)}
    db.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--single", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--batch-connections", type=int, default=8)
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--processes", type=int, default=1, help="server processes (siyu serve --processes)")
    parser.add_argument("--serve", nargs=3, metavar=("URL", "PORT", "PROCESSES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), int(args.serve[2]))
        return
    if not args.port:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            args.port = probe.getsockname()[1]
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    key = prepare(url)
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", url, str(args.port), str(args.processes)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        asyncio.run(_wait_ready(args.port))
        singles = []
        for i in range(args.single):
            body = event(i)
            singles.append(request_bytes("/v1/" + str(body.pop("type")), body, auth))
        # Warm up (the first fifth, untimed), then let the database gather statistics as its
        # autovacuum would: this machine's PostgreSQL runs with autovacuum off.
        warm = len(singles) // 5
        asyncio.run(send_all(args.port, singles[:warm], args.connections, server.pid))
        analyze(url)
        meter = CpuMeter(server.pid, database_server=url.startswith("postgresql"))
        meter.start()
        single_s, latencies, single_spread = asyncio.run(
            send_all(args.port, singles[warm:], args.connections, server.pid)
        )
        single_cpu = meter.report(args.single - warm)
        batches = [
            request_bytes(
                "/v1/batch",
                {"batch": [event(1_000_000 + b * args.batch_size + j) for j in range(args.batch_size)]},
                auth,
            )
            for b in range(args.batches)
        ]
        meter.start()
        batch_s, _, batch_spread = asyncio.run(send_all(args.port, batches, args.batch_connections, server.pid))
        batch_cpu = meter.report(args.batches * args.batch_size)
    finally:
        server.terminate()
        server.wait(30)
    floor = event_rows_floor(url, args.batches, args.batch_size)
    resolve = resolution_latency(url, 2000)
    backend = url.split(":", 1)[0]
    print(
        f"backend {backend}; server: `siyu serve --processes {args.processes}`; "
        f"{args.connections} connections ({single_spread} per process)"
    )
    print(
        f"single: {(args.single - args.single // 5) / single_s:,.0f} events/s; "
        f"latency p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {pct(latencies, 0.99):.1f} ms{single_cpu}"
    )
    print(
        f"batched ({args.batch_size}/request, {args.batch_connections} connections, {batch_spread} per process): "
        f"{args.batches * args.batch_size / batch_s:,.0f} events/s{batch_cpu}"
    )
    print(floor)
    for what, times in resolve.items():
        print(
            f"store + resolve one event in its own transaction, {what}: "
            f"p50 {statistics.median(times):.2f} ms, p99 {pct(times, 0.99):.2f} ms"
        )


async def _wait_ready(port: int) -> None:
    for _ in range(300):
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit("the server did not start")


if __name__ == "__main__":
    main()
