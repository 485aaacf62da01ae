"""Each workspace's identity rules: the defaults until its operators change them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.identity.rules import DEFAULT_RULES, IdentityRules
from siyu.identity.tables import IdentityRuleSet
from siyu.storage import jsontext
from siyu.storage.bulk import fetch_rows
from siyu.storage.scoping import require_workspace

_PARSED: dict[str, IdentityRules] = {}  # rule sets by their JSON text: parsed once per process
_MAX_PARSED = 256


_READ_IN = "siyu_identity_rules"  # session.info: (the transaction, the rules read in it)


def workspace_rules(scoped: Session) -> IdentityRules:
    """Read by key through the driver, once per transaction: every ingest transaction asks, and
    may ask before it waits for its turn to resolve (see ``take_resolution_turn``)."""
    transaction = scoped.get_transaction()
    cached = scoped.info.get(_READ_IN)
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1]  # type: ignore[no-any-return]
    rows = fetch_rows(scoped, IdentityRuleSet, ("rules",), "workspace_id", [require_workspace(scoped)])
    if not rows:
        rules = DEFAULT_RULES
    else:
        stored = rows[0][0]
        text = jsontext.dumps(stored)
        parsed = _PARSED.get(text)
        if parsed is None:
            if len(_PARSED) >= _MAX_PARSED:
                _PARSED.clear()
            parsed = _PARSED[text] = IdentityRules.from_dict(stored)
        rules = parsed
    scoped.info[_READ_IN] = (transaction, rules)
    return rules


def save_rules(scoped: Session, rules: IdentityRules, actor_id: str | None) -> None:
    scoped.info.pop(_READ_IN, None)
    row = scoped.scalar(select(IdentityRuleSet))
    if row is None:
        scoped.add(IdentityRuleSet(rules=rules.to_dict(), updated_by=actor_id, updated_at=utcnow()))
    else:
        row.rules, row.updated_by, row.updated_at = rules.to_dict(), actor_id, utcnow()


def has_own_rules(scoped: Session) -> bool:
    return scoped.scalar(select(IdentityRuleSet.id)) is not None
