"""Mini-program subscription acceptances, as the mini-program's backend reports them after
``wx.requestSubscribeMessage``: each "accept" allows one subscribe message."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels.tables import SubscribeAcceptance
from siyu.storage.scoping import require_workspace


def record_acceptances(scoped: Session, accepted: Sequence[tuple[str, str]]) -> int:
    """Add one acceptance per (openid, template id) given; returns how many were added."""
    workspace_id = require_workspace(scoped)
    rows = {
        (r.address, r.template): r
        for r in scoped.scalars(
            select(SubscribeAcceptance).where(SubscribeAcceptance.address.in_({a for a, _ in accepted}))
        )
    }
    for address, template in accepted:
        row = rows.get((address, template))
        if row is None:
            row = SubscribeAcceptance(workspace_id=workspace_id, address=address, template=template, accepted=0, used=0)
            scoped.add(row)
            rows[(address, template)] = row
        row.accepted += 1
    return len(accepted)


def remaining(scoped: Session, address: str, template: str) -> int:
    row = scoped.get(SubscribeAcceptance, (require_workspace(scoped), address, template))
    return max(0, row.accepted - row.used) if row else 0
