"""Identity rules per identifier kind: does it merge people, how much is it trusted, how many
may one person hold, and when is a value too widely shared to merge anyone.

Validated when loaded; a rule set that cannot be understood is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from siyu.core.errors import ValidationFailedError
from siyu.identity.contracts import IdentifierKind

K = IdentifierKind


@dataclass(frozen=True)
class KindRule:
    merges: bool = True
    # Higher links are applied first; on a conflict the stronger link wins.
    priority: int = 50
    # At most this many values of this kind (per scope) in one profile; None: no limit.
    max_per_profile: int | None = None
    # A value seen with more than this many distinct values of any one other kind is shared
    # (a shop's phone, a shared tablet) and merges nobody; None: never considered shared.
    shared_limit: int | None = None


def _default_rules() -> dict[IdentifierKind, KindRule]:
    return {
        K.USER_ID: KindRule(priority=100, max_per_profile=1),
        K.UNIONID: KindRule(priority=100, max_per_profile=1),
        K.MEMBER_NO: KindRule(priority=95, max_per_profile=1),
        K.OPENID: KindRule(priority=90, max_per_profile=1),
        K.WECOM_EXTERNAL_USERID: KindRule(priority=90, max_per_profile=1),
        K.PHONE: KindRule(priority=80, shared_limit=3),
        K.EMAIL: KindRule(priority=70, shared_limit=3),
        K.TAOBAO_OUID: KindRule(priority=65, max_per_profile=1),
        K.TAOBAO_NICK: KindRule(priority=60, shared_limit=3),
        K.JD_PIN: KindRule(priority=60, shared_limit=3),
        K.DOUYIN_BUYER_ID: KindRule(priority=60, shared_limit=3),
        K.YOUZAN_BUYER_ID: KindRule(priority=60, shared_limit=3),
        K.ANONYMOUS_ID: KindRule(priority=40, shared_limit=3),
        K.MASKED_PHONE: KindRule(merges=False, priority=10),
    }


@dataclass(frozen=True)
class IdentityRules:
    kinds: Mapping[IdentifierKind, KindRule] = field(default_factory=_default_rules)

    def __post_init__(self) -> None:
        missing = set(IdentifierKind) - set(self.kinds)
        if missing:
            raise ValidationFailedError(
                "identity rules must cover every identifier kind; missing: " + ", ".join(sorted(missing))
            )
        for kind, rule in self.kinds.items():
            if rule.max_per_profile is not None and rule.max_per_profile < 1:
                raise ValidationFailedError(f"{kind.value}: max_per_profile must be at least 1 or empty")
            if rule.shared_limit is not None and rule.shared_limit < 1:
                raise ValidationFailedError(f"{kind.value}: shared_limit must be at least 1 or empty")
        if IdentifierKind.MASKED_PHONE in self.kinds and self.kinds[IdentifierKind.MASKED_PHONE].merges:
            raise ValidationFailedError("masked phones are weak identifiers and cannot merge people")

    def rule(self, kind: IdentifierKind) -> KindRule:
        return self.kinds[kind]

    def to_dict(self) -> dict[str, dict[str, object]]:
        return {
            kind.value: {
                "merges": r.merges,
                "priority": r.priority,
                "max_per_profile": r.max_per_profile,
                "shared_limit": r.shared_limit,
            }
            for kind, r in self.kinds.items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, object]]) -> IdentityRules:
        """Rules as stored or sent; anything that is not understood is refused with the reason."""
        unknown = set(data) - {k.value for k in IdentifierKind}
        if unknown:
            raise ValidationFailedError("unknown identifier kinds: " + ", ".join(sorted(unknown)))
        kinds: dict[IdentifierKind, KindRule] = {}
        for name, rule in data.items():
            extra = set(rule) - {"merges", "priority", "max_per_profile", "shared_limit"}
            if extra:
                raise ValidationFailedError(f"{name}: unknown settings " + ", ".join(sorted(extra)))
            merges, priority = rule.get("merges", True), rule.get("priority", 50)
            cap, limit = rule.get("max_per_profile"), rule.get("shared_limit")
            if not isinstance(merges, bool):
                raise ValidationFailedError(f"{name}: merges must be true or false")
            if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 1000:
                raise ValidationFailedError(f"{name}: priority must be a whole number from 0 to 1000")
            for label, value in (("max_per_profile", cap), ("shared_limit", limit)):
                if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                    raise ValidationFailedError(f"{name}: {label} must be a whole number or empty")
            kinds[IdentifierKind(name)] = KindRule(merges, priority, cap, limit)  # type: ignore[arg-type]
        # In the defaults' order, whatever order they were stored in (PostgreSQL's JSONB sorts keys).
        order = list(_default_rules())
        return cls(dict(sorted(kinds.items(), key=lambda kv: order.index(kv[0]))))


DEFAULT_RULES = IdentityRules()
