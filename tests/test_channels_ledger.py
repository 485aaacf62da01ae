"""The send ledger and the dispatcher: each message written once by key, sent at most once,
never lost — through provider errors, adapter bugs and a dispatcher that dies mid-send."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from siyu.channels import accounts
from siyu.channels.adapters.base import MemoryTokenStore
from siyu.channels.adapters.sandbox import SandboxAdapter, record_path, taken_ids
from siyu.channels.contracts import (
    ChannelKind,
    Content,
    MessageKind,
    OutboundMessage,
    Outcome,
    PermanentFailure,
    RetryableFailure,
    Sent,
    Skipped,
)
from siyu.channels.dispatch import Dispatcher
from siyu.channels.facade import get_message, send_messages
from siyu.channels.ledger import MessageIn, claim_due, count_by_status, mark_handed
from siyu.channels.policy import Policy, QuietHours, save_policy
from siyu.channels.providers import PROVIDERS, ProviderSpec
from siyu.channels.retries import BACKOFF_SECONDS, MAX_ATTEMPTS, Done, RetryLater, decide
from siyu.channels.sandbox import simulate_receipts
from siyu.channels.suppression import suppressed
from siyu.channels.tables import Message
from siyu.core.clock import utcnow
from siyu.core.settings import get_settings
from siyu.jobs.tables import Job
from siyu.profiles.consent import Channel, Purpose, has_consent
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import TEST_SECRET, make_actor
from tests.fakes.server import FakeServer
from tests.fakes.tencent_sms import FakeTencentSms


def sandbox_account(db: Database, workspace_id: str, **settings: object) -> str:
    """A sandbox SMS account, in a workspace whose policy has no quiet hours (tests run at any hour)."""
    with db.transaction(Scope.workspace(workspace_id)) as s:
        save_policy(s, Policy(quiet_hours={}, caps=()), "")
        account = accounts.save_account(
            s,
            TEST_SECRET,
            accounts.AccountIn(ChannelKind.SMS, "sandbox", "sandbox sms", {k: str(v) for k, v in settings.items()}, {}),
        )
    return account.id


def messages(account_id: str, n: int, start: int = 0, link: str = "") -> list[MessageIn]:
    return [
        MessageIn(
            key=f"test:{i}",
            channel=ChannelKind.SMS,
            kind=MessageKind.MARKETING,
            address=f"+86138{i:08d}",
            content=Content(text=f"【品牌】第{i}条 拒收请回复R", link=link),
            account_id=account_id,
            source="test",
        )
        for i in range(start, start + n)
    ]


def dispatcher(db: Database, workspace_id: str) -> Dispatcher:
    return Dispatcher(db, workspace_id, TEST_SECRET, MemoryTokenStore())


def statuses(db: Database, workspace_id: str) -> dict[str, int]:
    with db.read(Scope.workspace(workspace_id)) as s:
        return count_by_status(s)


def test_retry_policy_is_one_exhaustive_decision() -> None:
    assert decide(Sent("x"), 1) == Done("sent")
    assert decide(Skipped("quiet hours"), 1) == Done("skipped", "quiet hours")
    assert decide(PermanentFailure("bad", "no", suppress=True), 1) == Done("failed", "bad: no", True)
    assert decide(RetryableFailure("busy", "later"), 1) == RetryLater(BACKOFF_SECONDS[0], "busy: later")
    assert decide(RetryableFailure("busy", "later", retry_after=900), 2) == RetryLater(900, "busy: later")
    last = decide(RetryableFailure("busy", "later"), MAX_ATTEMPTS)
    assert isinstance(last, Done) and last.status == "failed" and "gave up" in last.reason


def test_a_key_is_written_once_and_sent_once(db: Database) -> None:
    a = make_actor(db, "acme")
    account_id = sandbox_account(db, a.workspace_id)
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        first = send_messages(s, messages(account_id, 300))
        again = send_messages(s, messages(account_id, 310))
        jobs = list(s.scalars(select(Job.task).where(Job.task == "channels.dispatch")))
    assert (first.written, again.written, again.repeated) == (300, 10, 300)
    assert jobs  # the send asked for a dispatch
    report = dispatcher(db, a.workspace_id).run(batch=128)
    assert (report.claimed, report.sent) == (310, 310)
    assert dispatcher(db, a.workspace_id).run().claimed == 0
    assert statuses(db, a.workspace_id) == {"sent": 310}
    with db.read(Scope.workspace(a.workspace_id)) as s:
        row = s.scalars(select(Message).where(Message.key == "test:7")).one()
        assert (row.attempts, row.parts, row.provider_id) == (1, 1, f"sbx-{row.id}")


def test_a_lapsed_claim_is_sent_by_the_next_dispatcher_and_nothing_twice(db: Database) -> None:
    a = make_actor(db, "acme")
    account_id = sandbox_account(db, a.workspace_id)
    scope = Scope.workspace(a.workspace_id)
    with db.transaction(scope) as s:
        send_messages(s, messages(account_id, 50))
    with db.transaction(scope) as s:  # a dispatcher claims 20, then dies before closing them
        lost = claim_due(s, 20, 120, utcnow())
    assert len(lost) == 20
    report = dispatcher(db, a.workspace_id).run()
    assert report.sent == 30  # the claimed ones wait out their lease
    with db.transaction(scope) as s:  # the lease ends
        s.execute(update(Message).where(Message.status == "sending").values(not_before=utcnow() - timedelta(seconds=1)))
    assert dispatcher(db, a.workspace_id).run().sent == 20
    with db.read(scope) as s:
        rows = s.execute(select(Message.status, Message.attempts)).all()
    assert {r.status for r in rows} == {"sent"}
    assert sorted(r.attempts for r in rows).count(2) == 20


def _die_mid_handover(db: Database, workspace_id: str, account_id: str, record: Path | None) -> list[str]:
    """A dispatcher claims 20 messages, marks them handed over, gets 12 to the provider, and is
    killed before the ledger hears back; its lease then lapses. Returns the 12 that got there."""
    scope = Scope.workspace(workspace_id)
    with db.transaction(scope) as s:
        claimed = claim_due(s, 20, 120, utcnow())
        mark_handed(s, [c.message.id for c in claimed], utcnow())
    SandboxAdapter(record).send([c.message for c in claimed[:12]])
    with db.transaction(scope) as s:
        s.execute(update(Message).where(Message.status == "sending").values(not_before=utcnow() - timedelta(seconds=1)))
    return [c.message.id for c in claimed[:12]]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The installation's data directory (where a sandbox keeps its record), for one test."""
    monkeypatch.setenv("SIYU_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_a_handover_cut_short_is_looked_up_at_the_provider_not_repeated(db: Database, data_dir: Path) -> None:
    a = make_actor(db, "acme")
    account_id = sandbox_account(db, a.workspace_id, record="yes")
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        send_messages(s, messages(account_id, 50))
    record = record_path(get_settings().data_dir, a.workspace_id, account_id)
    got_there = _die_mid_handover(db, a.workspace_id, account_id, record)
    report = dispatcher(db, a.workspace_id).run()
    assert (report.claimed, report.sent) == (50, 50)
    taken = Counter(taken_ids(record))
    assert len(taken) == 50 and set(taken.values()) == {1}  # each message reached the provider once
    with db.read(Scope.workspace(a.workspace_id)) as s:
        rows = {m.id: (m.status, m.handed_at, m.provider_id) for m in s.scalars(select(Message))}
    assert {(status, handed) for status, handed, _ in rows.values()} == {("sent", None)}
    assert all(rows[i][2] == f"sbx-{i}" for i in got_there)


def test_a_handover_cut_short_where_the_provider_cannot_tell_is_given_up_not_repeated(db: Database) -> None:
    a = make_actor(db, "acme")
    account_id = sandbox_account(db, a.workspace_id)  # keeps no record
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        send_messages(s, messages(account_id, 50))
    _die_mid_handover(db, a.workspace_id, account_id, None)
    report = dispatcher(db, a.workspace_id).run()
    assert (report.sent, report.failed) == (30, 20)
    with db.read(Scope.workspace(a.workspace_id)) as s:
        failed = list(s.scalars(select(Message.reason).where(Message.status == "failed")))
    assert len(failed) == 20 and all(reason.startswith("outcome_unknown") for reason in failed)
    assert dispatcher(db, a.workspace_id).run().claimed == 0


class Flaky:
    provider = "flaky"
    channel = ChannelKind.SMS
    batch_size = 10

    def __init__(self) -> None:
        self.calls = 0

    def send(self, batch: Sequence[OutboundMessage]) -> list[Outcome]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("adapter bug")
        return [
            RetryableFailure("busy", "try later", retry_after=60) if m.to.endswith("1") else Sent("p") for m in batch
        ]


@pytest.fixture
def flaky_provider() -> Iterator[Flaky]:
    adapter = Flaky()
    PROVIDERS["flaky"] = ProviderSpec("flaky", "flaky", (ChannelKind.SMS,), (), 1e6, lambda account, tokens: adapter)
    yield adapter
    del PROVIDERS["flaky"]


def test_adapter_errors_and_retryable_failures_come_back_later(db: Database, flaky_provider: Flaky) -> None:
    a = make_actor(db, "acme")
    scope = Scope.workspace(a.workspace_id)
    with db.transaction(scope) as s:
        save_policy(s, Policy(quiet_hours={}, caps=()), "")  # tests run at any hour
        account_id = accounts.save_account(
            s, TEST_SECRET, accounts.AccountIn(ChannelKind.SMS, "flaky", "flaky", {}, {})
        ).id
        send_messages(s, messages(account_id, 10))
    first = dispatcher(db, a.workspace_id).run()
    assert (first.claimed, first.retried, first.sent) == (10, 10, 0)  # the bug's batch waits
    with db.transaction(scope) as s:
        s.execute(update(Message).values(not_before=utcnow()))
    second = dispatcher(db, a.workspace_id).run()
    assert (second.sent, second.retried) == (9, 1)
    with db.read(scope) as s:
        waiting = s.scalars(select(Message).where(Message.status == "queued")).one()
        assert waiting.address.endswith("1") and waiting.attempts == 2 and waiting.reason == "busy: try later"
        assert waiting.not_before > utcnow() + timedelta(seconds=50)


def test_a_provider_that_says_the_number_refuses_us_suppresses_it(db: Database) -> None:
    a = make_actor(db, "acme")
    scope = Scope.workspace(a.workspace_id)
    fake = FakeTencentSms("AKID", "key", "1400000001", {"9": "您的订单已发货"})
    fake.blacklist.add("+8613800000002")
    server = FakeServer(fake)
    try:
        with db.transaction(scope) as s:
            account_id = accounts.save_account(
                s,
                TEST_SECRET,
                accounts.AccountIn(
                    ChannelKind.SMS,
                    "tencent_sms",
                    "tencent",
                    {"sign_name": "品牌", "sdk_app_id": "1400000001", "endpoint": server.url, "host": server.url[7:]},
                    {"secret_id": "AKID", "secret_key": "key"},
                ),
            ).id
            items = [
                MessageIn(
                    f"k{i}",
                    ChannelKind.SMS,
                    MessageKind.TRANSACTIONAL,
                    f"+861380000000{i}",
                    Content(template="9"),
                    account_id,
                )
                for i in range(4)
            ]
            send_messages(s, items)
        report = dispatcher(db, a.workspace_id).run()
        assert (report.sent, report.failed) == (3, 1)
        with db.read(scope) as s:
            assert suppressed(s, "sms", [f"+861380000000{i}" for i in range(4)]) == {"+8613800000002"}
            failed = s.scalars(select(Message).where(Message.status == "failed")).one()
            assert failed.reason.startswith("FailedOperation.PhoneNumberInBlacklist")
        assert len(fake.sent) == 3
    finally:
        server.close()


def test_sandbox_receipts_replies_and_clicks_arrive_over_time(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    scope = Scope.workspace(a.workspace_id)
    proof = {"text_version": "v1"}
    body = {
        "records": [
            {
                "address": {"kind": "phone", "value": f"+86138{i:08d}"},
                "channel": "sms",
                "purpose": "marketing",
                "status": "granted",
                "at": "2026-11-01T00:00:00Z",
                "source": "form",
                "proof": proof,
            }
            for i in range(3)
        ]
    }
    ids = client.post("/api/v1/consents", json=body, headers=a.bearer).json()["identity_ids"]
    account_id = sandbox_account(
        db, a.workspace_id, delay_seconds=60, delivery_rate=0.5, reply_stop_rate=1, click_rate=1
    )
    with db.transaction(scope) as s:
        send_messages(s, messages(account_id, 40, link="https://brand.example/s/abc"))
    dispatcher(db, a.workspace_id).run()
    with db.transaction(scope) as s:
        early = simulate_receipts(s, utcnow())
    assert early.delivered == 0 and early.waiting  # receipts come later
    with db.transaction(scope) as s:
        report = simulate_receipts(s, utcnow() + timedelta(seconds=61))
    assert report.delivered + report.undelivered == 40
    assert 8 < report.delivered < 32  # about half, decided by a stable hash
    assert report.stopped == report.delivered == report.clicked
    with db.transaction(scope) as s:
        assert simulate_receipts(s, utcnow() + timedelta(seconds=120)).delivered == 0  # each once
    counts = statuses(db, a.workspace_id)
    assert counts == {"delivered": report.delivered, "undelivered": report.undelivered}
    with db.read(scope) as s:
        delivered = s.scalars(select(Message).where(Message.status == "delivered")).all()
        stopped = {m.address for m in delivered}
        assert suppressed(s, "sms", stopped) == stopped
        detail = get_message(s, delivered[0].id, mask=True)
        assert sorted(r.kind for r in detail.receipts) == ["click", "delivered"]
        assert "****" in detail.address
        for i, identity_id in enumerate(ids):
            address = f"+86138{i:08d}"
            assert has_consent(s, identity_id, Channel.SMS, Purpose.MARKETING) == (address not in stopped)


def test_marketing_that_comes_due_in_quiet_hours_waits_for_the_window(db: Database) -> None:
    a = make_actor(db, "acme")
    account_id = sandbox_account(db, a.workspace_id)
    scope = Scope.workspace(a.workspace_id)
    local = datetime.now(ZoneInfo("Asia/Shanghai"))
    opens = (local + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    closes = (local + timedelta(hours=3)).time().replace(second=0, microsecond=0)
    with db.transaction(scope) as s:  # a window that does not hold now
        save_policy(s, Policy(quiet_hours={"sms": QuietHours(opens, closes, "delay")}, caps=()), "")
        send_messages(s, messages(account_id, 3))
        notice = MessageIn(
            "n1", ChannelKind.SMS, MessageKind.TRANSACTIONAL, "+8613800000009", Content(text="已发货"), account_id
        )
        send_messages(s, [notice])
    report = dispatcher(db, a.workspace_id).run()
    assert (report.sent, report.retried) == (1, 3)  # the notice goes; marketing waits
    with db.read(scope) as s:
        waiting = s.scalars(select(Message).where(Message.status == "queued")).all()
        assert {m.reason for m in waiting} == {"quiet_hours: waits for the window"}
        assert {m.not_before.astimezone(ZoneInfo("Asia/Shanghai")).time() for m in waiting} == {opens}
    with db.transaction(scope) as s:
        save_policy(s, Policy(quiet_hours={"sms": QuietHours(opens, closes, "drop")}, caps=()), "")
        s.execute(update(Message).where(Message.status == "queued").values(not_before=utcnow()))
    dropped = dispatcher(db, a.workspace_id).run()
    assert dropped.skipped == 3 and statuses(db, a.workspace_id) == {"sent": 1, "skipped": 3}
