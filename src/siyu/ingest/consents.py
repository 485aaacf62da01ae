"""Consent records in: resolve each channel address to its identifier (and person), then append
to the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from siyu.identity.contracts import Identifier
from siyu.identity.resolver import observe_many
from siyu.profiles.consent import Channel, ConsentIn, ConsentStatus, Purpose, record_consents
from siyu.profiles.facade import apply_identity_outcome


@dataclass(frozen=True)
class ConsentSubmission:
    address: Identifier
    channel: Channel
    purpose: Purpose
    status: ConsentStatus
    at: datetime
    source: str
    proof: dict[str, Any]


def submit_consents(scoped: Session, items: list[ConsentSubmission]) -> list[str]:
    """Returns the identity id each record was filed under."""
    resolved = observe_many(scoped, [[i.address] for i in items], subjects=[i.address for i in items])
    apply_identity_outcome(scoped, resolved.new_profile_ids, resolved.changes)
    ids = [resolved.identity_ids[i.address] for i in items]
    record_consents(
        scoped,
        [
            ConsentIn(identity_id, i.channel, i.purpose, i.status, i.at, i.source, i.proof)
            for identity_id, i in zip(ids, items, strict=True)
        ],
    )
    return ids
