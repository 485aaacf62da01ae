"""Exactly once, whatever crashes: a 100,000-person sandbox campaign is sent by a worker process
that is killed with SIGKILL twice — once while the campaign is handed to the send ledger, once
while the dispatcher hands messages to the provider — and restarted each time. Every person gets
one ledger row, and the sandbox's own record (written to disk before it answers, apart from the
ledger) holds each sent message exactly once: no duplicates, none missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select, text

from siyu.campaigns import facade as campaigns
from siyu.campaigns.library import CampaignDraft, VariantDraft, source_of
from siyu.campaigns.tables import Campaign, CampaignRecipient
from siyu.channels import accounts
from siyu.channels.adapters.sandbox import record_path, taken_ids
from siyu.channels.contracts import ChannelKind, MessageKind
from siyu.channels.policy import Policy, save_policy
from siyu.channels.tables import Message
from siyu.channels.templates import TemplateDraft, save_template
from siyu.core.clock import utcnow
from siyu.identity.tables import Identity
from siyu.jobs.tables import Job
from siyu.profiles.tables import ConsentRecord, Profile
from siyu.segments.tables import Segment, SegmentMember
from siyu.storage.bulk import append_rows
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import TEST_SECRET, make_actor

ROOT = Path(__file__).resolve().parents[1]
PEOPLE = 100_000


def _brand(db: Database, workspace_id: str) -> tuple[str, str]:
    """100,000 people with a phone, nine in ten agreeing to marketing SMS, in a static segment;
    a sandbox account that keeps a record; returns (segment id, account id)."""
    now = utcnow()
    ids = [f"pf_{i:024d}" for i in range(PEOPLE)]
    scope = Scope.workspace(workspace_id)
    with db.transaction(scope) as s:
        segment = Segment(name="十万人", kind="static", people=PEOPLE)
        s.add(segment)
        s.flush()
        segment_id = segment.id
        profiles = [(p, f"会员{i}", {"name": f"会员{i}"}, {}, now, now, now, now) for i, p in enumerate(ids)]
        columns = ("id", "display_name", "traits", "trait_sources", "first_seen_at", "last_seen_at")
        append_rows(s, Profile, (*columns, "created_at", "updated_at"), profiles, on_conflict=("id",))
        append_rows(
            s,
            Identity,
            ("id", "profile_id", "kind", "scope", "value", "weak", "shared", "first_seen_at"),
            [(f"idn_{i:024d}", p, "phone", "", f"+8613{i:09d}", False, False, now) for i, p in enumerate(ids)],
            on_conflict=("id",),
        )
        append_rows(
            s,
            ConsentRecord,
            ("id", "identity_id", "channel", "purpose", "status", "at", "source", "proof", "recorded_at"),
            [
                (f"cns_{i:024d}", f"idn_{i:024d}", "sms", "marketing", "granted", now, "form", {}, now)
                for i in range(PEOPLE)
                if i % 10
            ],
            on_conflict=("id",),
        )
        append_rows(
            s,
            SegmentMember,
            ("segment_id", "profile_id", "entered_at"),
            [(segment_id, p, now) for p in ids],
            on_conflict=("segment_id", "profile_id"),
        )
        save_policy(s, Policy(quiet_hours={}, caps=()), "")
        account = accounts.save_account(
            s,
            TEST_SECRET,
            accounts.AccountIn(ChannelKind.SMS, "sandbox", "sandbox", {"sign_name": "品牌", "record": "yes"}, {}),
        )
    return segment_id, account.id


def _worker(db: Database, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SIYU_DATABASE_URL": db.url,
        "SIYU_SECRET_KEY": TEST_SECRET,
        "SIYU_DATA_DIR": str(data_dir),
        "SIYU_JOB_POLL_SECONDS": "0.1",
        "SIYU_DISPATCH_LEASE_SECONDS": "3",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "siyu.cli.main", "worker", "--lease-seconds", "2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


def _until(
    check: Callable[[], bool], seconds: float, what: str, every: float = 0.02, why: Callable[[], str] = str
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}\n{why()}")


def _state(db: Database, scope: Scope, source: str, log: Path) -> str:
    """What a stuck send looks like: its ledger by status, its jobs, the worker's last words."""
    with db.read(scope) as s:
        ledger = s.execute(
            select(Message.status, func.count()).where(Message.source == source).group_by(Message.status)
        )
        jobs = s.execute(select(Job.task, Job.status, Job.attempts, Job.last_error).order_by(Job.created_at))
        lines = [f"ledger: {dict(ledger.tuples().all())}", *(f"job: {tuple(j)}" for j in jobs)]
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            activity = conn.execute(
                text(
                    "SELECT state, wait_event, now() - query_start, query FROM pg_stat_activity"
                    " WHERE pid <> pg_backend_pid() AND datname = current_database()"
                )
            )
            lines += [f"server: {tuple(a)}" for a in activity]
    tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:] if log.exists() else []
    return "\n".join([*lines, "worker log:", *tail])


def test_a_worker_killed_twice_during_a_100k_send_sends_each_message_once(db: Database, tmp_path: Path) -> None:
    a = make_actor(db, "acme")
    scope = Scope.workspace(a.workspace_id)
    segment_id, account_id = _brand(db, a.workspace_id)
    with db.transaction(scope) as s:
        body = "{{ profile.name }}，双11会员价 拒收请回复R"
        template = save_template(s, TemplateDraft("双11", ChannelKind.SMS, MessageKind.MARKETING, body=body), None)
        draft = CampaignDraft("双11十万人", segment_id, (VariantDraft("A", template.id, 100),))
        campaign_id = campaigns.save_campaign(s, draft, None).id
        campaigns.set_settings(s, approval_threshold=1_000_000, costs={})
        campaigns.schedule(s, campaign_id, {"name"})
    record = record_path(tmp_path, a.workspace_id, account_id)
    source = source_of(campaign_id)

    def prepared() -> int:
        with db.read(scope) as s:
            return int(s.scalar(select(Campaign.prepared).where(Campaign.id == campaign_id)) or 0)

    def taken() -> int:
        return record.read_bytes().count(b"\n") if record.exists() else 0

    def finished() -> bool:
        with db.read(scope) as s:
            status = s.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
            waiting = s.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.source == source, Message.status.in_(("queued", "sending", "held")))
            )
        return status == "completed" and waiting == 0

    log = tmp_path / "worker.log"
    started = time.monotonic()
    worker = _worker(db, tmp_path, log)
    try:
        _until(lambda: prepared() >= 30_000, 120, "the campaign to be a third handed over")
        os.kill(worker.pid, signal.SIGKILL)  # mid-preparation
        worker.wait(timeout=10)
        assert prepared() < PEOPLE
        worker = _worker(db, tmp_path, log)
        _until(lambda: taken() >= 20_000, 180, "the provider to have taken 20,000 messages")
        os.kill(worker.pid, signal.SIGKILL)  # mid-dispatch
        worker.wait(timeout=10)
        assert taken() < 90_000
        worker = _worker(db, tmp_path, log)
        _until(
            finished, 420, "the campaign to finish", 0.5, lambda: _state(db, scope, source, log)
        )  # counting the ledger costs the worker CPU
    finally:
        worker.kill()
        worker.wait(timeout=10)
    elapsed = time.monotonic() - started

    with db.read(scope) as s:
        rows = s.execute(
            select(Message.id, Message.profile_id, Message.status, Message.reason).where(Message.source == source)
        ).all()
        audience = set(
            s.scalars(select(CampaignRecipient.profile_id).where(CampaignRecipient.campaign_id == campaign_id))
        )
    assert len(audience) == PEOPLE
    per_person = Counter(r.profile_id for r in rows)
    assert set(per_person) == audience and set(per_person.values()) == {1}  # one ledger row each, none missing
    went = {"sent", "delivered", "undelivered"}  # receipts may have come back already
    statuses = Counter(
        ("went out" if r.status in went else r.status, r.reason if r.status == "skipped" else "") for r in rows
    )
    assert statuses == {("went out", ""): 90_000, ("skipped", "no_consent"): 10_000}, statuses
    sent = {r.id for r in rows if r.status in went}
    took = Counter(taken_ids(record))
    assert set(took) == sent, "the provider's record and the ledger disagree"
    assert max(took.values()) == 1, "a message reached the provider twice"
    print(f"100k campaign with two kill -9s: {elapsed:.1f} s")
