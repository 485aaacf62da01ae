"""The sandbox provider: takes a message for any channel as a provider would, checking the
address, and sends nothing. Receipts, replies and clicks follow over time
(siyu.channels.sandbox).

With ``record`` on, it also keeps its own record of every message it took, as a provider does:
one JSON line each, written to disk before it answers. It is kept apart from the send ledger,
so it shows what really went out whatever happened to the ledger (a dispatcher killed between
the provider's answer and the ledger's update), and it answers the dispatcher's ``lookup``."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import orjson

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

    def __init__(self, record: Path | None = None) -> None:
        self.record = record
        self._taken: set[str] | None = None

    def send(self, messages: Sequence[OutboundMessage]) -> list[Outcome]:
        outcomes = [self._one(m) for m in messages]
        if self.record is not None:
            at = datetime.now(UTC).isoformat()
            took = [m for m, o in zip(messages, outcomes, strict=True) if isinstance(o, Sent)]
            self.record.parent.mkdir(parents=True, exist_ok=True)
            with self.record.open("ab") as out:
                out.write(b"".join(orjson.dumps({"id": m.id, "to": m.to, "at": at}) + b"\n" for m in took))
                out.flush()
                os.fsync(out.fileno())
            self.taken().update(m.id for m in took)
        return outcomes

    def lookup(self, messages: Sequence[OutboundMessage]) -> list[Outcome | None]:
        """What the record says it took of ``messages`` (without a record it cannot say)."""
        if self.record is None:
            raise LookupError("this sandbox account keeps no record")
        taken = self.taken()
        return [self._one(m) if m.id in taken else None for m in messages]

    def taken(self) -> set[str]:
        if self._taken is None:
            self._taken = set(taken_ids(self.record)) if self.record is not None else set()
        return self._taken

    def _one(self, m: OutboundMessage) -> Outcome:
        pattern = _ADDRESS.get(m.channel)
        if not m.to or (pattern is not None and not pattern.fullmatch(m.to)):
            return PermanentFailure("invalid_address", f"{m.to!r} is not a {m.channel.value} address")
        parts = sms_parts(len(m.content.text)) if m.channel is ChannelKind.SMS else 1
        return Sent(provider_id=f"sbx-{m.id}", parts=parts)


def taken_ids(record: Path) -> list[str]:
    """Every message id in a sandbox record, once per time it was taken."""
    if not record.exists():
        return []
    return [orjson.loads(line)["id"] for line in record.read_bytes().splitlines() if line.strip()]


def record_path(data_dir: Path, workspace_id: str, account_id: str) -> Path:
    return data_dir / "sandbox" / f"{workspace_id}-{account_id}.jsonl"
