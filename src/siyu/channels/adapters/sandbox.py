"""The sandbox provider: takes a message for any channel as a provider would, checking the
address, and sends nothing. What it took stays in the send ledger; receipts, replies and clicks
follow over time (siyu.channels.sandbox)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from siyu.channels.contracts import ChannelKind, OutboundMessage, Outcome, PermanentFailure, Sent
from siyu.channels.sms import sms_parts

_ADDRESS = {
    ChannelKind.SMS: re.compile(r"\+\d{6,15}"),
    ChannelKind.EMAIL: re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+"),
    ChannelKind.WEBHOOK: re.compile(r"https?://\S+"),
}


class SandboxAdapter:
    provider: ClassVar[str] = "sandbox"
    channel: ClassVar[ChannelKind] = ChannelKind.SMS  # it serves every channel
    batch_size: ClassVar[int] = 1000

    def send(self, messages: Sequence[OutboundMessage]) -> list[Outcome]:
        return [self._one(m) for m in messages]

    def _one(self, m: OutboundMessage) -> Outcome:
        pattern = _ADDRESS.get(m.channel)
        if not m.to or (pattern is not None and not pattern.fullmatch(m.to)):
            return PermanentFailure("invalid_address", f"{m.to!r} is not a {m.channel.value} address")
        parts = sms_parts(len(m.content.text)) if m.channel is ChannelKind.SMS else 1
        return Sent(provider_id=f"sbx-{m.id}", parts=parts)
