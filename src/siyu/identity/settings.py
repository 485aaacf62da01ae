"""Each workspace's identity rules: the defaults until its operators change them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.identity.rules import DEFAULT_RULES, IdentityRules
from siyu.identity.tables import IdentityRuleSet


def workspace_rules(scoped: Session) -> IdentityRules:
    row = scoped.scalar(select(IdentityRuleSet))
    return IdentityRules.from_dict(row.rules) if row is not None else DEFAULT_RULES


def save_rules(scoped: Session, rules: IdentityRules, actor_id: str | None) -> None:
    row = scoped.scalar(select(IdentityRuleSet))
    if row is None:
        scoped.add(IdentityRuleSet(rules=rules.to_dict(), updated_by=actor_id, updated_at=utcnow()))
    else:
        row.rules, row.updated_by, row.updated_at = rules.to_dict(), actor_id, utcnow()


def has_own_rules(scoped: Session) -> bool:
    return scoped.scalar(select(IdentityRuleSet.id)) is not None
