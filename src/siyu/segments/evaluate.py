"""Who is in each dynamic segment, as the batch run works it out, and how that differs from who is
in it now. Segments are evaluated in dependency order, each one's members added to the membership
table the later rules read, so a rule asking about another segment sees this run's answer.

The inputs have people as integer codes (``analytics.rule_inputs.Coded``): members are found and
compared as codes, and only those who enter or leave are turned back into ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pyarrow as pa
import pyarrow.compute as pc
from ibis.backends import BaseBackend

from siyu.rules.compiler import Moment, RuleInputs, compile_rule
from siyu.rules.nodes import parse_rule
from siyu.segments.contracts import SegmentSpec

MEMBERS_TABLE = "segment_members_of_run"
CODED_MEMBERSHIPS = pa.schema([pa.field("profile_id", pa.int32()), pa.field("segment_id", pa.string())])


@dataclass(frozen=True)
class SegmentChanges:
    """One segment's run: how many are in it, who entered, who left (ids)."""

    size: int
    entered: pa.Array
    exited: pa.Array


def evaluate_segments(
    con: BaseBackend,
    specs: Sequence[SegmentSpec],
    inputs: RuleInputs,
    moment: Moment,
    held: pa.Table,
    decode: Callable[[pa.Array], pa.Array],
    gone: pa.Table | None = None,
) -> dict[str, SegmentChanges]:
    """Each segment's changes, by id, for ``specs`` in evaluation order.

    ``inputs``: coded; ``held``: profile_id (code), segment_id of every membership now (static
    segments' count as they are); ``decode``: codes to ids; ``gone``: profile_id (id),
    segment_id of memberships of people who are no longer there — they leave."""
    held = held.select(["profile_id", "segment_id"]).cast(CODED_MEMBERSHIPS)
    evaluated = pa.array([s.id for s in specs], pa.string())
    kept = held.filter(pc.invert(pc.is_in(held.column("segment_id"), evaluated)))
    con.create_table(MEMBERS_TABLE, kept, temp=True, overwrite=True)
    inputs = replace(inputs, segments=con.table(MEMBERS_TABLE))
    out: dict[str, SegmentChanges] = {}
    for spec in specs:
        chosen = compile_rule(parse_rule(spec.rule), inputs, moment).to_pyarrow()
        members = chosen.column("profile_id").cast(pa.int32()).combine_chunks()
        before = held.filter(pc.equal(held.column("segment_id"), spec.id)).column("profile_id").combine_chunks()
        entered = members.filter(pc.invert(pc.is_in(members, before)))
        exited = decode(before.filter(pc.invert(pc.is_in(before, members))))
        if gone is not None and gone.num_rows:
            left = gone.filter(pc.equal(gone.column("segment_id"), spec.id)).column("profile_id")
            exited = pa.concat_arrays([exited.cast(pa.string()), left.combine_chunks().cast(pa.string())])
        out[spec.id] = SegmentChanges(size=len(members), entered=decode(entered), exited=exited)
        if len(members):
            ids = pa.array([spec.id] * len(members), pa.string())
            con.insert(MEMBERS_TABLE, pa.table({"profile_id": members, "segment_id": ids}))
    return out
