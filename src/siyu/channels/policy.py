"""The one send policy every message goes through, whoever sends it (campaigns, journeys,
playbooks, a test send). Its settings per workspace:

- quiet hours per channel for marketing, in the workspace's time zone: outside the window a
  message waits for the next one (``delay``) or is dropped (``drop``); by default marketing SMS go
  09:00–20:00 and wait otherwise;
- frequency caps for marketing, per channel or across all (``*``), counted over every source:
  by default at most 2 marketing SMS per person in 7 days, and one WeCom mass message a day (the
  platform's own limit);
- the workspace's extra sensitive words (stored apart, see ``SendPolicySettings``).

The rules themselves (consent, suppression, holdouts, one contact per person, caps, quiet hours)
are applied in bulk by :mod:`siyu.channels.prepare`; each skip is recorded with its reason."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from siyu.channels.contracts import ChannelKind
from siyu.channels.tables import SendPolicySettings
from siyu.core.errors import ValidationFailedError
from siyu.storage.scoping import require_workspace

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
ALL = "*"


class SkipReason:
    """Why a message is not sent: one word each, shown and counted."""

    NO_ADDRESS = "no_address"
    NO_CONSENT = "no_consent"
    SUPPRESSED = "suppressed"
    HOLDOUT = "holdout"
    DUPLICATE_CONTACT = "duplicate_contact"
    FREQUENCY_CAP = "frequency_cap"
    QUIET_HOURS = "quiet_hours"
    NO_ACCEPTANCE = "no_acceptance"
    RENDER_FAILED = "render_failed"
    CONTENT_REFUSED = "content_refused"
    CANCELLED = "cancelled"  # its send was cancelled before it went

    ALL = (
        NO_ADDRESS,
        NO_CONSENT,
        SUPPRESSED,
        HOLDOUT,
        DUPLICATE_CONTACT,
        FREQUENCY_CAP,
        QUIET_HOURS,
        NO_ACCEPTANCE,
        RENDER_FAILED,
        CONTENT_REFUSED,
        CANCELLED,
    )


@dataclass(frozen=True)
class QuietHours:
    """Marketing goes only from ``start`` to ``end`` (local time); ``end`` before ``start``
    means a window across midnight."""

    start: time
    end: time
    action: str = "delay"  # delay | drop

    def allows(self, local: datetime) -> bool:
        at = local.time()
        if self.start <= self.end:
            return self.start <= at < self.end
        return at >= self.start or at < self.end

    def next_open(self, local: datetime) -> datetime:
        """The first moment at or after ``local`` inside the window."""
        if self.allows(local):
            return local
        opening = local.replace(hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0)
        return opening if opening > local else opening + timedelta(days=1)


@dataclass(frozen=True)
class Cap:
    channel: str  # a channel, or * for all channels together
    max: int
    days: int


@dataclass(frozen=True)
class Policy:
    timezone: str = "Asia/Shanghai"
    quiet_hours: dict[str, QuietHours] = field(
        default_factory=lambda: {ChannelKind.SMS.value: QuietHours(time(9), time(20), "delay")}
    )
    caps: tuple[Cap, ...] = (Cap(ChannelKind.SMS.value, 2, 7), Cap(ChannelKind.WECOM.value, 1, 1))

    def local(self, at: datetime) -> datetime:
        return at.astimezone(ZoneInfo(self.timezone))

    def send_time(self, channel: str, at: datetime) -> tuple[datetime | None, bool]:
        """When a marketing message asked for ``at`` may go: (when, True), or (None, False) when
        quiet hours drop it."""
        window = self.quiet_hours.get(channel)
        if window is None:
            return at, True
        local = self.local(at)
        if window.allows(local):
            return at, True
        if window.action == "drop":
            return None, False
        return window.next_open(local).astimezone(at.tzinfo), True

    def to_dict(self) -> dict[str, Any]:
        return {
            "quiet_hours": {
                ch: {"start": q.start.strftime("%H:%M"), "end": q.end.strftime("%H:%M"), "action": q.action}
                for ch, q in sorted(self.quiet_hours.items())
            },
            "caps": [{"channel": c.channel, "max": c.max, "days": c.days} for c in self.caps],
        }


def _clock(value: Any, where: str) -> time:
    match = _CLOCK.match(str(value))
    if not match:
        raise ValidationFailedError(f"{where} must be a time like 09:00", details={"path": where})
    return time(int(match.group(1)), int(match.group(2)))


def policy_from_dict(data: dict[str, Any], timezone: str) -> Policy:
    """A policy from its stored or submitted form; anything malformed is refused with its path."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailedError(f"unknown time zone {timezone!r}") from None
    channels = {c.value for c in ChannelKind}
    extra = set(data) - {"quiet_hours", "caps"}
    if extra:
        raise ValidationFailedError(f"unknown policy settings: {', '.join(sorted(extra))}")
    quiet: dict[str, QuietHours] = {}
    for channel, window in dict(data.get("quiet_hours") or {}).items():
        where = f"quiet_hours.{channel}"
        if channel not in channels:
            raise ValidationFailedError(f"{where}: no channel {channel!r}", details={"path": where})
        action = str(window.get("action", "delay"))
        if action not in ("delay", "drop"):
            raise ValidationFailedError(f"{where}.action must be delay or drop", details={"path": f"{where}.action"})
        start, end = _clock(window.get("start"), f"{where}.start"), _clock(window.get("end"), f"{where}.end")
        if start == end:
            raise ValidationFailedError(f"{where}: the window is empty", details={"path": where})
        quiet[channel] = QuietHours(start, end, action)
    caps = []
    for i, cap in enumerate(data.get("caps") or []):
        where = f"caps[{i}]"
        channel = str(cap.get("channel", ""))
        if channel != ALL and channel not in channels:
            raise ValidationFailedError(
                f"{where}.channel: no channel {channel!r}", details={"path": f"{where}.channel"}
            )
        limit, days = cap.get("max"), cap.get("days")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= 1000:
            raise ValidationFailedError(f"{where}.max must be a whole number from 0 to 1000", details={"path": where})
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 365:
            raise ValidationFailedError(f"{where}.days must be a whole number from 1 to 365", details={"path": where})
        caps.append(Cap(channel, limit, days))
    return Policy(timezone=timezone, quiet_hours=quiet, caps=tuple(caps))


def load_policy(scoped: Session, timezone: str) -> tuple[Policy, str]:
    """The workspace's policy (the defaults until it sets its own) and its extra sensitive words."""
    row = scoped.get(SendPolicySettings, require_workspace(scoped))
    if row is None or not row.policy:
        return Policy(timezone=timezone), row.sensitive_words if row else ""
    return policy_from_dict(dict(row.policy), timezone), row.sensitive_words


def save_policy(scoped: Session, policy: Policy, sensitive_words: str) -> None:
    workspace_id = require_workspace(scoped)
    row = scoped.get(SendPolicySettings, workspace_id)
    if row is None:
        row = SendPolicySettings(workspace_id=workspace_id)
        scoped.add(row)
    row.policy = policy.to_dict()
    row.sensitive_words = sensitive_words
