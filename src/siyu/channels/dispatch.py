"""The dispatcher: claims due messages from the ledger in batches, hands them to their
account's adapter within its rate limit, and closes them with the decision the retry policy
takes on each outcome. Addresses a provider says refuse us are suppressed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from siyu.accounts.facade import get_workspace
from siyu.channels.accounts import account_row, open_account
from siyu.channels.adapters.base import Adapter, TokenStore, lookup
from siyu.channels.contracts import MessageKind, OutboundMessage, Outcome, PermanentFailure, RetryableFailure, Sent
from siyu.channels.errors import AccountNotFoundError
from siyu.channels.ledger import ClaimedMessage, Closed, claim_due, close_messages, mark_handed
from siyu.channels.policy import Policy, SkipReason, load_policy
from siyu.channels.providers import provider_spec
from siyu.channels.ratelimit import TokenBucket, bucket_for
from siyu.channels.retries import Decision, Done, RetryLater, decide
from siyu.channels.suppression import suppress_addresses
from siyu.core.clock import utcnow
from siyu.storage.scoping import Scope, require_workspace
from siyu.storage.session import Database

log = logging.getLogger(__name__)

CLAIM_BATCH = 2000
LEASE_SECONDS = 120.0
OUTCOME_UNKNOWN = (
    "outcome_unknown: the dispatcher stopped while handing it to the provider, which cannot say "
    "whether it took it; not sent again so it cannot arrive twice"
)


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    by_account: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Route:
    adapter: Adapter | None
    bucket: TokenBucket | None
    problem: str = ""


class Dispatcher:
    """Sends one workspace's due messages. Adapters are built once per account."""

    def __init__(self, db: Database, workspace_id: str, secret_key: str, tokens: TokenStore) -> None:
        self.db = db
        self.scope = Scope.workspace(workspace_id)
        self.secret_key = secret_key
        self.tokens = tokens
        self._routes: dict[str | None, _Route] = {}
        self._policy: Policy | None = None

    def policy(self) -> Policy:
        """The workspace's send policy, read once per dispatcher."""
        if self._policy is None:
            with self.db.read(self.scope) as scoped:
                timezone = get_workspace(scoped, require_workspace(scoped)).timezone
                self._policy = load_policy(scoped, timezone)[0]
        return self._policy

    def run(
        self, *, batch: int = CLAIM_BATCH, budget_seconds: float | None = None, lease_seconds: float = LEASE_SECONDS
    ) -> DispatchReport:
        """Dispatch until nothing is due (or the budget is spent)."""
        report = DispatchReport()
        started = time.monotonic()
        while budget_seconds is None or time.monotonic() - started < budget_seconds:
            with self.db.transaction(self.scope) as scoped:
                claimed = claim_due(scoped, batch, lease_seconds, utcnow())
            if not claimed:
                break
            self._send(claimed, report)
        return report

    def _route(self, account_id: str | None) -> _Route:
        if account_id not in self._routes:
            if account_id is None:
                self._routes[account_id] = _Route(None, None, "the message names no channel account")
            else:
                with self.db.read(self.scope) as scoped:
                    try:
                        row = account_row(scoped, account_id)
                    except AccountNotFoundError:
                        row = None
                    if row is None or not row.enabled:
                        self._routes[account_id] = _Route(
                            None, None, f"channel account {account_id} is gone or disabled"
                        )
                    else:
                        adapter = provider_spec(row.provider).build(open_account(row, self.secret_key), self.tokens)
                        self._routes[account_id] = _Route(adapter, bucket_for(row.id, row.rate_per_second))
        return self._routes[account_id]

    def _send(self, claimed: Sequence[ClaimedMessage], report: DispatchReport) -> None:
        now = utcnow()
        closed: list[Closed] = []
        by_account: dict[str | None, list[ClaimedMessage]] = {}
        for c in claimed:
            # Marketing that came due outside its channel's window (a backlog past 20:00, a
            # retry) waits for the next window, or is dropped if the policy says so.
            if c.message.kind is MessageKind.MARKETING and not c.in_doubt:  # those are settled first
                when, allowed = self.policy().send_time(c.message.channel.value, now)
                if not allowed:
                    closed.append(Closed(c.message.id, Done("skipped", SkipReason.QUIET_HOURS)))
                    report.skipped += 1
                    continue
                if when is not None and when > now:
                    wait = (when - now).total_seconds()
                    closed.append(
                        Closed(c.message.id, RetryLater(wait, f"{SkipReason.QUIET_HOURS}: waits for the window"))
                    )
                    report.retried += 1
                    continue
            by_account.setdefault(c.account_id, []).append(c)
        refused: list[tuple[str, str, str]] = []
        for account_id, claims in by_account.items():
            route = self._route(account_id)
            group = self._settle_in_doubt(route, claims, closed, report)
            for start in range(0, len(group), route.adapter.batch_size if route.adapter else len(group)):
                chunk = group[start : start + (route.adapter.batch_size if route.adapter else len(group))]
                if route.adapter is not None:
                    with self.db.transaction(self.scope) as scoped:
                        mark_handed(scoped, [c.message.id for c in chunk], utcnow())
                outcomes = self._outcomes(route, [c.message for c in chunk])
                for c, outcome in zip(chunk, outcomes, strict=True):
                    decision = self._in_window(c, decide(outcome, c.attempt), now)
                    sent = outcome if isinstance(outcome, Sent) else None
                    closed.append(
                        Closed(c.message.id, decision, sent.provider_id if sent else "", sent.parts if sent else 0)
                    )
                    _count(report, decision)
                    if isinstance(decision, Done) and decision.suppress:
                        refused.append((c.message.channel.value, c.message.to, decision.reason))
            report.by_account[account_id or ""] = report.by_account.get(account_id or "", 0) + len(claims)
        report.claimed += len(claimed)
        with self.db.transaction(self.scope) as scoped:
            close_messages(scoped, closed, now)
            if refused:
                suppress_addresses(scoped, refused, source="provider")

    def _settle_in_doubt(
        self, route: _Route, claims: list[ClaimedMessage], closed: list[Closed], report: DispatchReport
    ) -> list[ClaimedMessage]:
        """Messages a dead dispatcher was handing over may have reached the provider. Where the
        provider can say what it took, those it took are closed as sent and the rest go out now;
        where it cannot, they are closed as failed with the reason, never sent a second time.
        Returns the claims to send."""
        doubtful = [c for c in claims if c.in_doubt]
        if not doubtful:
            return claims
        to_send = [c for c in claims if not c.in_doubt]
        found = lookup(route.adapter, [c.message for c in doubtful]) if route.adapter is not None else None
        for i, c in enumerate(doubtful):
            outcome = found[i] if found is not None else None
            if found is not None and outcome is None:
                to_send.append(c)  # the provider never got it
            elif isinstance(outcome, Sent):
                closed.append(Closed(c.message.id, Done("sent"), outcome.provider_id, outcome.parts))
                report.sent += 1
            else:
                closed.append(Closed(c.message.id, Done("failed", OUTCOME_UNKNOWN)))
                report.failed += 1
        return to_send

    def _in_window(self, c: ClaimedMessage, decision: Decision, now: datetime) -> Decision:
        """A marketing retry is moved to where quiet hours allow it."""
        if not isinstance(decision, RetryLater) or c.message.kind is not MessageKind.MARKETING:
            return decision
        later = now + timedelta(seconds=decision.delay_seconds)
        when, allowed = self.policy().send_time(c.message.channel.value, later)
        if not allowed or when is None:
            return Done("skipped", f"{SkipReason.QUIET_HOURS}: the retry fell in quiet hours")
        return RetryLater((when - now).total_seconds(), decision.reason)

    def _outcomes(self, route: _Route, messages: list[OutboundMessage]) -> list[Outcome]:
        if route.adapter is None:
            return [PermanentFailure("no_account", route.problem)] * len(messages)
        if route.bucket is not None:
            route.bucket.take(len(messages))
        try:
            outcomes = route.adapter.send(messages)
        except Exception as exc:  # an adapter bug must not lose messages: they are retried
            log.exception("adapter %s raised", route.adapter.provider)
            return [RetryableFailure("adapter_error", f"{type(exc).__name__}: {exc}"[:300])] * len(messages)
        if len(outcomes) != len(messages):
            return [RetryableFailure("adapter_error", "the adapter answered for a different number of messages")] * len(
                messages
            )
        return outcomes


def _count(report: DispatchReport, decision: object) -> None:
    if isinstance(decision, Done):
        if decision.status == "sent":
            report.sent += 1
        elif decision.status == "skipped":
            report.skipped += 1
        else:
            report.failed += 1
    else:
        report.retried += 1


DispatchFn = Callable[[Database, str], DispatchReport]
