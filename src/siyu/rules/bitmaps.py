"""Rules evaluated as bitmaps over people numbered by small integer codes: each leaf of a rule
(a trait test, an event count…) is compiled to a query by the rule compiler, as in any other
evaluation, and its people kept as a bitmap over the codes; ``and``, ``or`` and ``not`` are then
bitwise operations, and a leaf shared by several rules is asked once. Order aggregates, which
total each person's purchases, are worked out together: one grouping of the purchases for all
the rules. Event counts, given the event log as kept by identifier (``RuleInputs.keyed``), read
the keys of the rows they count and count everyone over the codes, each row's person looked up
rather than joined; which rows count and whether a count passes are the compiler's ``Tally``.
A leaf's people are taken as they come, with no distinct pass. This is the compiler's meaning
(leaves its sets of people, groups their intersection, union and complement against everyone),
tested equal to the compiled rule; it is only faster when many rules share the same people.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pyarrow as pa

from siyu.rules.compiler import Keyed, Moment, RuleInputs, Tally, compile_leaf, tallied, tally_column, tally_of
from siyu.rules.nodes import All, AnyOf, Bucket, InSegment, Leaf, Node, Not, rule_to_dict, walk

# The inputs whose tallies are worked out together: the purchases, which each order leaf would
# otherwise scan whole. Event counts are asked one by one, for each reads only its event's rows
# from the snapshot (``analytics.rule_inputs.READ_IN_PLACE``), while one grouping of every asked
# event's rows costs more: at 10M people, six event leaves took 5.7 s one by one and 7.8 s
# together; seven order leaves 3.9 s one by one and 1.5 s together.
TOGETHER = frozenset({"purchases"})

CODED_MEMBERSHIPS = pa.schema([pa.field("profile_id", pa.int32()), pa.field("segment_id", pa.string())])


class Bitmaps:
    """Rules evaluated as bitmaps over the codes, leaves asked once each. ``people``: which codes
    are someone's (a mask), or their number when every code below it is."""

    def __init__(
        self,
        inputs: RuleInputs,
        moment: Moment,
        people: int | np.ndarray,
        held: pa.Table | None = None,
        buckets: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.inputs, self.moment = inputs, moment
        self.buckets = buckets or {}  # seed → each code's bucket (-1 for none), instead of the input
        self.everyone: np.ndarray = np.ones(people, dtype=bool) if isinstance(people, int) else people
        # Who is in each segment now (profile_id as code, segment_id), for rules asking about them.
        held = held if held is not None else CODED_MEMBERSHIPS.empty_table()
        self.held = held.select(["profile_id", "segment_id"]).cast(CODED_MEMBERSHIPS)
        self.leaves: dict[str, np.ndarray] = {}
        self.segments: dict[str, np.ndarray] = {}  # this run's answers
        self._held_by_segment: dict[str, np.ndarray] | None = None  # ``before``'s, grouped once

    def of(self, node: Node) -> np.ndarray:
        match node:
            case All():
                out = self.everyone.copy()
                for child in node.conditions:
                    if isinstance(child, Not):
                        out &= ~self.of(child.condition)
                    else:
                        out &= self.of(child)
                return out
            case AnyOf():
                out = np.zeros(self.everyone.size, dtype=bool)
                for child in node.conditions:
                    out |= self.of(child)
                return out
            case Not():
                outside: np.ndarray = np.logical_and(self.everyone, ~self.of(node.condition))
                return outside
            case InSegment():
                return self.segment(node.segment_id)
            case _:
                key = repr(rule_to_dict(node))
                if key not in self.leaves:
                    self.leaves[key] = self.leaf(node)
                return self.leaves[key]

    def leaf(self, node: Leaf) -> np.ndarray:
        if isinstance(node, Bucket) and node.seed in self.buckets:
            drawn = self.buckets[node.seed]
            inside: np.ndarray = self.everyone & (drawn >= node.from_) & (drawn < node.to)
            return inside
        found = tally_of(node, self.moment)
        if found is not None and found.measure == "count" and found.source in self.inputs.keyed:
            return self.counted(found, self.inputs.keyed[found.source])
        table, complement = compile_leaf(node, self.inputs, self.moment, repeats=True)
        chosen = self.bits(table.to_pyarrow().column("profile_id"))
        return np.logical_and(self.everyone, ~chosen) if complement else chosen

    def counted(self, found: Tally, keyed: Keyed) -> np.ndarray:
        """A count's people, from the rows as kept (``RuleInputs.keyed``): the keys of the rows it
        counts read alone, each key's person looked up, and everyone's count made in one pass
        over the codes. Joining the rows to their people and grouping them took three times as
        long (six event leaves at 10M people)."""
        rows = keyed.rows
        keys = rows.filter(found.where(rows)).select(keyed.key).to_pyarrow().column(0)
        key = keys.fill_null(-1).to_numpy()
        whose = keyed.people[key[(key >= 0) & (key < keyed.people.size)]]
        count = np.bincount(whose[whose >= 0], minlength=self.everyone.size)
        passing: np.ndarray = self.everyone & np.asarray(found.passes(count), dtype=bool)
        return passing

    def tally(self, nodes: Iterable[Node], sources: Iterable[str] = TOGETHER) -> None:
        """Work out every tally among the leaves of ``nodes`` over one of ``sources`` (inputs)
        in one pass over each, rather than one query for each; except those the inputs have
        worked out ahead (``RuleInputs.tallies``), which their leaves read."""
        pending: dict[str, dict[str, Tally]] = {}
        wanted = set(sources)
        ahead = self.inputs.tallies.columns if self.inputs.tallies is not None else ()
        for node in nodes:
            for _, leaf in walk(node):
                key = repr(rule_to_dict(leaf))
                found = tally_of(leaf, self.moment) if key not in self.leaves else None
                if found is not None and found.source in wanted and tally_column(leaf) not in ahead:
                    pending.setdefault(found.source, {})[key] = found
        for tallies in pending.values():
            totals = tallied(list(tallies.values()), self.inputs).to_pyarrow()
            codes = totals.column("profile_id").to_numpy().astype(np.int64, copy=False)
            for i, (key, found) in enumerate(tallies.items()):
                column = totals.column(f"t{i}")
                known = column.is_valid().to_numpy(zero_copy_only=False)  # a mean of nothing is null
                passing = np.asarray(found.passes(column.to_numpy(zero_copy_only=False)), dtype=bool) & known
                if found.zero_passes:  # everyone but those whose total fails
                    chosen = self.everyone.copy()
                    chosen[codes[~passing]] = False
                else:
                    chosen = np.zeros(self.everyone.size, dtype=bool)
                    chosen[codes[passing]] = True
                self.leaves[key] = chosen

    def segment(self, segment_id: str) -> np.ndarray:
        """The segment's members: as this run found them, or as they are (a static segment)."""
        if segment_id not in self.segments:
            self.segments[segment_id] = self.bits(self.before(segment_id))
        return self.segments[segment_id]

    def before(self, segment_id: str) -> np.ndarray:
        """Who is in the segment now, as codes. The memberships are grouped by segment once, not
        scanned for each (50 segments of 2M members each are 100M rows)."""
        if self._held_by_segment is None:
            encoded = self.held.column("segment_id").combine_chunks().dictionary_encode()
            which = encoded.indices.to_numpy(zero_copy_only=False)
            order = np.argsort(which, kind="stable")
            bounds = np.searchsorted(which[order], np.arange(len(encoded.dictionary) + 1))
            codes = self.held.column("profile_id").to_numpy()[order]
            self._held_by_segment = {
                str(name): codes[bounds[i] : bounds[i + 1]] for i, name in enumerate(encoded.dictionary.to_pylist())
            }
        return self._held_by_segment.get(segment_id, np.zeros(0, dtype=np.int32))

    def bits(self, codes: np.ndarray | pa.Array | pa.ChunkedArray) -> np.ndarray:
        out = np.zeros(self.everyone.size, dtype=bool)
        if isinstance(codes, pa.ChunkedArray):
            codes = codes.combine_chunks()
        values = codes.to_numpy() if isinstance(codes, pa.Array) else codes
        out[values.astype(np.int64, copy=False)] = True
        return out
