"""What a workspace's rules may name — its traits (with the types each can be read as), events,
tags, RFM groups, lifecycle stages, community groups and segments — and the check of a parsed
rule against it.

The catalog is gathered by the caller (from the batch engine's snapshots and the tag library) and
handed in, so checking, like compiling, does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from siyu.core.errors import ValidationFailedError
from siyu.rules.nodes import (
    CommunityGroup,
    HasTag,
    InSegment,
    Lifecycle,
    Node,
    Performed,
    RfmGroup,
    Trait,
    walk,
)


@dataclass(frozen=True)
class TagRef:
    id: str
    name: str
    kind: str  # manual | rule | computed


@dataclass(frozen=True)
class Catalog:
    traits: Mapping[str, frozenset[str]] = field(default_factory=dict)  # key → the types it reads as
    events: frozenset[str] = frozenset()
    tags: Mapping[str, TagRef] = field(default_factory=dict)
    rfm_groups: frozenset[str] = frozenset()
    stages: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()  # community groups
    segments: Mapping[str, str] = field(default_factory=dict)  # id → name


def check_rule(node: Node, catalog: Catalog) -> None:
    """Raise ValidationFailedError listing every name the rule uses that the workspace does not
    know, each with its place in the rule."""
    problems = [{"path": path, "message": message} for path, n in walk(node) for message in _unknown(n, catalog)]
    if problems:
        raise ValidationFailedError(
            f"the rule is not valid: {problems[0]['message']}"
            + (f" (at {problems[0]['path']})" if problems[0]["path"] else ""),
            details={"problems": problems},
        )


def _unknown(node: Node, catalog: Catalog) -> list[str]:
    match node:
        case Trait():
            types = catalog.traits.get(node.key)
            if types is None:
                return [f"no profile has the trait {node.key!r}"]
            if node.value_type not in types:
                return [f"the trait {node.key!r} holds {' or '.join(sorted(types))} values, not {node.value_type}"]
        case RfmGroup():
            return [f"unknown RFM group {g!r}" for g in node.groups if g not in catalog.rfm_groups]
        case Lifecycle():
            return [f"unknown lifecycle stage {s!r}" for s in node.stages if s not in catalog.stages]
        case HasTag():
            tag = catalog.tags.get(node.tag_id)
            if tag is None:
                return [f"unknown tag {node.tag_id!r}"]
            if node.values is not None and tag.kind != "computed":
                return [f"the tag {tag.name!r} holds no values; leave out values"]
        case Performed():
            if node.event not in catalog.events:
                return [f"no one has done the event {node.event!r}"]
        case CommunityGroup():
            return [f"no one is in the community group {g!r}" for g in node.groups if g not in catalog.groups]
        case InSegment():
            if node.segment_id not in catalog.segments:
                return [f"unknown segment {node.segment_id!r}"]
    return []


def tags_used(node: Node) -> set[str]:
    """The ids of the tags a rule asks about."""
    return {n.tag_id for _, n in walk(node) if isinstance(n, HasTag)}


def segments_used(node: Node) -> set[str]:
    """The ids of the segments a rule asks about."""
    return {n.segment_id for _, n in walk(node) if isinstance(n, InSegment)}
