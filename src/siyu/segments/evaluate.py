"""Who is in each dynamic segment, as the batch run works it out, and how that differs from who is
in it now. Segments are evaluated in dependency order, each one's members added to the membership
table the later rules read, so a rule asking about another segment sees this run's answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pyarrow as pa
import pyarrow.compute as pc
from ibis.backends import BaseBackend

from siyu.rules.compiler import Moment, RuleInputs, compile_rule
from siyu.rules.nodes import parse_rule
from siyu.segments.contracts import SegmentSpec

MEMBERS_TABLE = "segment_members_of_run"
MEMBERSHIPS = pa.schema([pa.field("profile_id", pa.string()), pa.field("segment_id", pa.string())])


@dataclass(frozen=True)
class SegmentChanges:
    """One segment's run: who is in it, who entered, who left."""

    size: int
    entered: pa.Array
    exited: pa.Array


def evaluate_segments(
    con: BaseBackend, specs: Sequence[SegmentSpec], inputs: RuleInputs, moment: Moment, held: pa.Table
) -> dict[str, SegmentChanges]:
    """Each segment's changes, by id, for ``specs`` in evaluation order. ``held``: profile_id,
    segment_id of every membership now (static segments' count as they are)."""
    held = held.select(["profile_id", "segment_id"]).cast(MEMBERSHIPS)
    evaluated = pa.array([s.id for s in specs], pa.string())
    kept = held.filter(pc.invert(pc.is_in(held.column("segment_id"), evaluated)))
    con.create_table(MEMBERS_TABLE, kept, temp=True, overwrite=True)
    inputs = replace(inputs, segments=con.table(MEMBERS_TABLE))
    out: dict[str, SegmentChanges] = {}
    for spec in specs:
        chosen = compile_rule(parse_rule(spec.rule), inputs, moment).to_pyarrow()
        members = chosen.column("profile_id").cast(pa.string()).combine_chunks()
        before = held.filter(pc.equal(held.column("segment_id"), spec.id)).column("profile_id").combine_chunks()
        out[spec.id] = SegmentChanges(
            size=len(members),
            entered=members.filter(pc.invert(pc.is_in(members, before))),
            exited=before.filter(pc.invert(pc.is_in(before, members))),
        )
        if len(members):
            con.insert(
                MEMBERS_TABLE, pa.table({"profile_id": members, "segment_id": pa.array([spec.id] * len(members))})
            )
    return out
