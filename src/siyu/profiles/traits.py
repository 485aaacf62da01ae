"""Progressive profiles: trait values from every source, each with its provenance, folded into
current values by per-trait precedence.

Observations are kept per identifier (append-only), so the current traits of any profile — after
a merge or a split — are a fold over the observations of the identifiers it holds now.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.identity.tables import Identity
from siyu.profiles.tables import Profile, TraitObservation
from siyu.storage.bulk import append_rows, fetch_rows, update_rows

MAX_TRAITS_PER_CALL = 200
MAX_KEY_CHARS = 100


class Precedence(enum.StrEnum):
    LATEST = "latest"  # the most recently observed value wins
    FIRST_SEEN = "first_seen"  # the first value ever observed stays (e.g. acquisition channel)
    SOURCE_PRIORITY = "source_priority"  # the most trusted source wins, then the latest


@dataclass(frozen=True)
class TraitRule:
    precedence: Precedence = Precedence.LATEST
    sources: tuple[str, ...] = ()  # most trusted first (SOURCE_PRIORITY)


_LATEST = TraitRule()
DEFAULT_RULES: Mapping[str, TraitRule] = {
    "first_channel": TraitRule(Precedence.FIRST_SEEN),
    "birthday": TraitRule(Precedence.SOURCE_PRIORITY, ("member", "crm", "import")),
    "name": TraitRule(Precedence.SOURCE_PRIORITY, ("member", "crm", "import")),
}


@dataclass(frozen=True)
class Observed:
    key: str
    value: Any
    source: str
    observed_at: datetime
    identity_id: str


def _rank(obs: Observed, rule: TraitRule) -> tuple[Any, ...]:
    """Higher ranks win; ties resolved by identity id for a deterministic fold."""
    return _rank_of(obs.source, obs.observed_at, obs.identity_id, rule)


def _rank_of(source: str, observed_at: datetime, identity_id: str, rule: TraitRule) -> tuple[Any, ...]:
    match rule.precedence:
        case Precedence.LATEST:
            return (observed_at, identity_id)
        case Precedence.FIRST_SEEN:
            return (-observed_at.timestamp(), identity_id)
        case Precedence.SOURCE_PRIORITY:
            trust = len(rule.sources) - rule.sources.index(source) if source in rule.sources else 0
            return (trust, observed_at, identity_id)
    raise AssertionError(rule.precedence)  # pragma: no cover


def fold(
    observations: Iterable[Observed], rules: Mapping[str, TraitRule] = DEFAULT_RULES
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Current values and their provenance."""
    best: dict[str, Observed] = {}
    for obs in observations:
        rule = rules.get(obs.key, TraitRule())
        if obs.key not in best or _rank(obs, rule) > _rank(best[obs.key], rule):
            best[obs.key] = obs
    values = {k: o.value for k, o in best.items()}
    sources = {
        k: {"source": o.source, "observed_at": o.observed_at.isoformat(), "identity_id": o.identity_id}
        for k, o in best.items()
    }
    return values, sources


def clean_traits(traits: Mapping[str, Any]) -> dict[str, Any]:
    """Keep JSON-able, reasonably named traits; nested objects are kept whole."""
    kept: dict[str, Any] = {}
    for key, value in list(traits.items())[:MAX_TRAITS_PER_CALL]:
        if isinstance(key, str) and 0 < len(key) <= MAX_KEY_CHARS and value is not None:
            kept[key] = value
    return kept


@dataclass(frozen=True)
class TraitReport:
    """Traits one source reported about the person holding ``identity_id``."""

    profile_id: str
    identity_id: str
    traits: Mapping[str, Any]
    source: str
    observed_at: datetime


class StoredProfile(NamedTuple):
    """A profile's current traits as stored."""

    id: str
    traits: dict[str, Any] | None
    trait_sources: dict[str, Any] | None
    display_name: str | None


@dataclass(frozen=True)
class TraitWrites:
    """What recording some reports writes: observations to append, profiles to update."""

    observations: list[tuple[Any, ...]]
    profiles: list[tuple[Any, ...]]  # (id, traits, trait_sources, display_name, updated_at)

    def __bool__(self) -> bool:
        return bool(self.observations or self.profiles)


def record_traits(
    scoped: Session, reports: Sequence[TraitReport], rules: Mapping[str, TraitRule] = DEFAULT_RULES
) -> None:
    """Append the observations (in bulk) and update each profile's current values where the new
    ones win; reports apply in order.

    A report that repeats what its identifier and source last said — the value the profile holds
    from them, reported again no earlier — is not a new observation: SDKs send a person's traits
    with every call, and the first report of a value stands for the run of repeats.
    """
    write_traits(scoped, plan_traits(scoped, reports, rules))


def plan_traits(
    scoped: Session, reports: Sequence[TraitReport], rules: Mapping[str, TraitRule] = DEFAULT_RULES
) -> TraitWrites:
    """What :func:`record_traits` would write, from the profiles as stored now (nothing when every
    report repeats what its profile holds)."""
    cleaned = [(r, clean_traits(r.traits)) for r in reports]
    cleaned = [(r, c) for r, c in cleaned if c]
    if not cleaned:
        return TraitWrites([], [])
    now = utcnow()
    stored = {
        row.id: row
        for row in map(
            StoredProfile._make,
            fetch_rows(
                scoped,
                Profile,
                ("id", "traits", "trait_sources", "display_name"),
                "id",
                (r.profile_id for r, _traits in cleaned),
            ),
        )
    }
    observations: list[tuple[Any, ...]] = []
    current: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    held_at = _Times()
    for report, traits in cleaned:
        profile = stored.get(report.profile_id)
        if profile is None:
            observations += [_observation(report, key, value, now) for key, value in traits.items()]
            continue
        values, sources = current.setdefault(
            profile.id, (dict(profile.traits or {}), dict(profile.trait_sources or {}))
        )
        provenance: dict[str, Any] | None = None
        for key, value in traits.items():
            held = sources.get(key)
            if held is not None:
                at = held_at(held["observed_at"])
                if (
                    held["identity_id"] == report.identity_id
                    and held["source"] == report.source
                    and _same(values.get(key), value)
                    and report.observed_at >= at
                ):
                    continue  # a repeat
            observations.append(_observation(report, key, value, now))
            rule = rules.get(key, _LATEST)
            if held is None or _rank_of(report.source, report.observed_at, report.identity_id, rule) > _rank_of(
                held["source"], at, held["identity_id"], rule
            ):
                if provenance is None:
                    provenance = {
                        "source": report.source,
                        "observed_at": report.observed_at.isoformat(),
                        "identity_id": report.identity_id,
                    }
                values[key] = value
                sources[key] = provenance
    changed = []
    for profile_id, (values, sources) in current.items():
        profile = stored[profile_id]
        name = values.get("name")
        display_name = name[:200] if isinstance(name, str) and name.strip() else profile.display_name
        if values != profile.traits or sources != profile.trait_sources or display_name != profile.display_name:
            changed.append((profile_id, values, sources, display_name, now))
    return TraitWrites(observations, changed)


def write_traits(scoped: Session, writes: TraitWrites) -> None:
    append_rows(
        scoped,
        TraitObservation,
        ("id", "identity_id", "key", "value", "source", "observed_at", "recorded_at"),
        writes.observations,
        on_conflict=("id",),
    )
    # Written in one statement for all of them (the event API updates thousands a second).
    update_rows(scoped, Profile, ("traits", "trait_sources", "display_name", "updated_at"), writes.profiles)


def _observation(report: TraitReport, key: str, value: Any, now: datetime) -> tuple[Any, ...]:
    """A trait_observations row (columns as record_traits appends them)."""
    return (new_id("tob_"), report.identity_id, key, {"v": value}, report.source, report.observed_at, now)


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same JSON type (``1``, ``1.0`` and ``true`` are different reports)."""
    return type(a) is type(b) and a == b


class _Times(dict[str, datetime]):
    """Provenance times parsed once per distinct text."""

    def __call__(self, text: str) -> datetime:
        at = self.get(text)
        if at is None:
            at = self[text] = datetime.fromisoformat(text)
        return at


def refold(scoped: Session, profile_ids: Sequence[str], rules: Mapping[str, TraitRule] = DEFAULT_RULES) -> None:
    """Recompute current traits of profiles from the observations of the identifiers they hold
    (read and written in bulk: merges refold their survivors inside the ingest transaction)."""
    wanted = sorted(set(profile_ids))
    stored = list(
        map(
            StoredProfile._make,
            fetch_rows(scoped, Profile, ("id", "traits", "trait_sources", "display_name"), "id", wanted),
        )
    )
    changed = [(*row, utcnow()) for row in refolded(scoped, stored, rules)]
    update_rows(scoped, Profile, ("traits", "trait_sources", "display_name", "updated_at"), changed)


def refolded(
    scoped: Session, profiles: Sequence[StoredProfile], rules: Mapping[str, TraitRule] = DEFAULT_RULES
) -> list[StoredProfile]:
    """The profiles whose current traits, folded again from the observations of the identifiers
    they hold, differ from those given; with the new values (nothing is written)."""
    if not profiles:
        return []
    holder = dict(fetch_rows(scoped, Identity, ("id", "profile_id"), "profile_id", [p.id for p in profiles]))
    observed: dict[str, list[Observed]] = {p.id: [] for p in profiles}
    for key, value, source, at, who in fetch_rows(
        scoped,
        TraitObservation,
        ("key", "value", "source", "observed_at", "identity_id"),
        "identity_id",
        holder,
    ):
        observed[holder[who]].append(Observed(key, value.get("v"), source, at, who))
    changed = []
    for profile in profiles:
        observations = observed[profile.id]
        if not observations and profile.trait_sources == {} and profile.traits:
            continue  # loaded directly (demo, legacy): nothing observed to refold from
        values, sources = fold(observations, rules)
        name = values.get("name")
        display_name = name[:200] if isinstance(name, str) and name.strip() else None
        if values != profile.traits or sources != profile.trait_sources or display_name != profile.display_name:
            changed.append(StoredProfile(profile.id, values, sources, display_name))
    return changed
