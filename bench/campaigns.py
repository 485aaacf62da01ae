"""Campaigns end to end, and the short-link redirect.

    python bench/campaigns.py send [--people 100000] [--repeat 3] [--dir DIR] [--database-url URL]
    python bench/campaigns.py redirect [--clicks 2000] [--dir DIR]

``send``: a campaign of two variants (each with a tracked link) to a segment of N people, through
the sandbox: the audience frozen, each person drawn into a variant, prepared chunk by chunk into
the ledger with a short link each, then dispatched — the time from launch to the last message
handed to the provider. The peer, in the same run and store: the same people as one quick send
of one template (one SendRequest, no variants, no links, no audience to freeze), dispatched the
same way. Medians of ``--repeat`` runs, each on a new campaign.

``redirect``: ``/s/<code>`` served by siyu (uvicorn, one process: look the code up, log the
click, count the visitor, redirect) against a bare redirect route in the same server setup
that touches no database, one keep-alive client sending requests one after another; p50 and
p99 latency of each and their ratio.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from channels import SECRET, brand  # the bench beside this one (the script's directory is on the path)
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from sqlalchemy import update

from siyu.api.app import create_app
from siyu.campaigns import facade as campaigns
from siyu.campaigns.library import CampaignDraft, VariantDraft
from siyu.campaigns.run import run_campaign
from siyu.channels import facade as channels
from siyu.channels.adapters.base import MemoryTokenStore
from siyu.channels.contracts import ChannelKind, MessageKind
from siyu.channels.dispatch import Dispatcher
from siyu.channels.policy import Policy, save_policy
from siyu.channels.prepare import Links, Recipient, SendRequest
from siyu.channels.tables import ChannelAccount
from siyu.channels.templates import TemplateDraft, save_template
from siyu.core.clock import utcnow
from siyu.core.settings import Settings
from siyu.segments.tables import Segment, SegmentMember
from siyu.storage.bulk import append_rows
from siyu.storage.scoping import Scope
from siyu.tracking import facade as tracking

LINKS = Links("https://t.brand.example", SECRET)
BODY = "{{ profile.name }}，双11会员价 {{ link }} 拒收请回复R"


def _setup(directory: Path, people: int, url: str | None) -> tuple[Any, str, list[str], str, tuple[str, str]]:
    db, workspace_id, ids, _, _ = brand(directory, people, url)
    scope = Scope.workspace(workspace_id)
    with db.transaction(scope) as s:
        save_policy(s, Policy(quiet_hours={}, caps=()), "")
        s.execute(update(ChannelAccount).values(rate_per_second=1e9))
        segment = Segment(name="bench", kind="static", people=people)
        s.add(segment)
        s.flush()
        now = utcnow()
        rows = [(segment.id, p, now) for p in ids]
        append_rows(
            s, SegmentMember, ("segment_id", "profile_id", "entered_at"), rows, on_conflict=("segment_id", "profile_id")
        )
        made = [
            save_template(
                s,
                TemplateDraft(
                    f"双11-{k}", ChannelKind.SMS, MessageKind.MARKETING, body=BODY, link=f"https://shop.example/{k}"
                ),
                None,
            ).id
            for k in ("A", "B")
        ]
        segment_id = segment.id
        campaigns.set_settings(s, approval_threshold=10**9, costs={})
    return db, workspace_id, ids, segment_id, (made[0], made[1])


def bench_send(args: argparse.Namespace, directory: Path) -> None:
    db, workspace_id, ids, segment_id, (a, b) = _setup(directory, args.people, args.database_url)
    scope = Scope.workspace(workspace_id)
    ours, peers = [], []
    for run in range(args.repeat):
        with db.transaction(scope) as s:
            draft = CampaignDraft(f"bench {run}", segment_id, (VariantDraft("A", a, 50), VariantDraft("B", b, 50)))
            campaign_id = campaigns.save_campaign(s, draft, None).id
            campaigns.schedule(s, campaign_id, {"name", "city", "points"})
        started = time.perf_counter()
        report = run_campaign(db, workspace_id, campaign_id, LINKS, budget_seconds=3600)
        prepared = time.perf_counter() - started
        sent = Dispatcher(db, workspace_id, SECRET, MemoryTokenStore()).run().sent
        total = time.perf_counter() - started
        assert report.status == "completed" and report.prepared == args.people, report
        ours.append(total)

        started = time.perf_counter()
        with db.transaction(scope) as s:
            request = SendRequest(f"send:peer{run}", "1", a, [Recipient(p) for p in ids])
            channels.prepare(s, request, LINKS)
        peer_prepared = time.perf_counter() - started
        peer_sent = Dispatcher(db, workspace_id, SECRET, MemoryTokenStore()).run().sent
        peer_total = time.perf_counter() - started
        peers.append(peer_total)
        with db.read(scope) as s:
            clicked = tracking.people_who_clicked(s, f"campaign:{campaign_id}")
        print(
            f"run {run + 1}: campaign {total:.2f} s (prepared {prepared:.2f} s, {sent:,} sent, clicked {clicked}); "
            f"quick send {peer_total:.2f} s (prepared {peer_prepared:.2f} s, {peer_sent:,} sent)"
        )
    ours_m, peer_m = statistics.median(ours), statistics.median(peers)
    print(
        f"{args.people:,}-person campaign through the sandbox: median {ours_m:.2f} s "
        f"({args.people / ours_m:,.0f} people/s); quick send of one template {peer_m:.2f} s; "
        f"campaign / quick send x{ours_m / peer_m:.2f}"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def _latencies(base: str, path: str, n: int) -> list[float]:
    out = []
    with httpx.Client(base_url=base, headers={"User-Agent": "Mozilla/5.0 (iPhone) MicroMessenger/8.0"}) as client:
        for i in range(n + 50):
            started = time.perf_counter()
            response = client.get(
                path, follow_redirects=False, headers={"X-Forwarded-For": f"10.0.{i // 250}.{i % 250}"}
            )
            took = time.perf_counter() - started
            assert response.status_code == 302, (path, response.status_code, response.text[:200])
            if i >= 50:  # warmed up
                out.append(took * 1000)
    return out


def bench_redirect(args: argparse.Namespace, directory: Path) -> None:
    db, workspace_id, _, _, _ = brand(directory, 10, None)
    with db.transaction(Scope.workspace(workspace_id)) as s:
        code = tracking.create_link(s, kind="qr", target="https://shop.example/card", name="bench").code
    settings = Settings(environment="test", secret_key=SECRET, database_url=db.url, web_dist=None, data_dir=directory)
    bare = FastAPI()

    @bare.get("/s/{code}")
    async def follow(code: str) -> RedirectResponse:
        return RedirectResponse("https://shop.example/card", status_code=302)

    servers = [_serve(create_app(settings, db)), _serve(bare)]
    try:
        ours = sorted(_latencies(servers[0][2], f"/s/{code}", args.clicks))
        peer = sorted(_latencies(servers[1][2], f"/s/{code}", args.clicks))
    finally:
        for server, thread, _ in servers:
            server.should_exit = True
            thread.join(timeout=10)
    with db.read(Scope.workspace(workspace_id)) as s:
        counted = tracking.link_counts(s, [code])[code]
    assert counted.requests == args.clicks + 50, counted

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))]

    print(
        f"/s/<code> on SQLite: p50 {pct(ours, 0.5):.2f} ms, p99 {pct(ours, 0.99):.2f} ms "
        f"({counted.clicks:,} people counted of {counted.requests:,} requests); "
        f"bare redirect: p50 {pct(peer, 0.5):.2f} ms, p99 {pct(peer, 0.99):.2f} ms; "
        f"p50 x{pct(ours, 0.5) / pct(peer, 0.5):.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    send = sub.add_parser("send")
    send.add_argument("--people", type=int, default=100_000)
    send.add_argument("--repeat", type=int, default=3)
    send.add_argument("--database-url", default=None)
    redirect = sub.add_parser("redirect")
    redirect.add_argument("--clicks", type=int, default=2000)
    for p in (send, redirect):
        p.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        (bench_send if args.what == "send" else bench_redirect)(args, Path(tmp))


if __name__ == "__main__":
    main()
