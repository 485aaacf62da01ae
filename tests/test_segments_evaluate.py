"""A run's segments are evaluated as bitmaps over coded people, leaves asked once: the same
people as the compiled rule for every case of the rule compiler's table, and entries and exits
worked out against who is in each segment now, including people merged away since."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from siyu.analytics.inputs import purchase_totals
from siyu.rules.bitmaps import Bitmaps
from siyu.rules.compiler import (
    Keyed,
    Moment,
    RuleInputs,
    compile_leaf,
    recent_purchase_tallies,
    tally_column,
    tally_of,
)
from siyu.rules.nodes import Performed, parse_rule, rule_to_dict, walk
from siyu.segments.contracts import SegmentSpec
from siyu.segments.evaluate import evaluate_segments
from tests.test_rules_compiler import AS_OF, CASES, PEOPLE, world

KEYS = pa.array(PEOPLE)


def coded_world(spread: int = 1) -> tuple[RuleInputs, pa.Table]:
    """The compiler tests' world with people as codes (their place in PEOPLE, times ``spread``:
    the codes between are no one's); segment sg_a's members as memberships held now."""
    con = ibis.duckdb.connect()
    tables: dict[str, Any] = {}
    for name, table in world().items():
        place = pc.index_in(table.column("profile_id"), value_set=KEYS)
        codes = pc.multiply(place, spread).cast(pa.int32())
        coded = table.set_column(table.schema.get_field_index("profile_id"), "profile_id", codes)
        if name != "segments":
            tables[name] = con.create_table(f"coded_{name}", coded, temp=True)
        else:
            held = coded
    return RuleInputs(**tables), held


@pytest.fixture(scope="module")
def coded() -> tuple[RuleInputs, pa.Table]:
    return coded_world()


@pytest.mark.parametrize(("rule", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_bitmaps_select_what_the_compiled_rule_selects(
    coded: tuple[RuleInputs, pa.Table], rule: dict[str, Any], expected: set[str]
) -> None:
    inputs, held = coded
    maps = Bitmaps(inputs, Moment(AS_OF), len(PEOPLE), held)
    chosen = maps.of(parse_rule(rule))
    assert {PEOPLE[i] for i, inside in enumerate(chosen) if inside} == expected


def test_a_bitmap_takes_a_leafs_people_as_they_come(coded: tuple[RuleInputs, pa.Table]) -> None:
    """The bitmaps ask for a leaf's people without a pass making each once: p1, with two
    interests, comes twice, and is marked once."""
    inputs, held = coded
    has = parse_rule({"type": "trait", "key": "interests", "value_type": "list", "op": "exists"})
    repeated = compile_leaf(has, inputs, Moment(AS_OF), repeats=True)[0].to_pyarrow().column("profile_id")
    once = compile_leaf(has, inputs, Moment(AS_OF))[0].to_pyarrow().column("profile_id")
    assert sorted(repeated.to_pylist()) == [0, 0, 2] and sorted(once.to_pylist()) == [0, 2]
    chosen = Bitmaps(inputs, Moment(AS_OF), len(PEOPLE), held).of(has)
    assert {PEOPLE[i] for i in np.flatnonzero(chosen)} == {"p1", "p3"}


def test_codes_no_one_has_are_in_no_segment() -> None:
    """Codes of people merged away leave gaps: a complement ("not", "at most") is taken against
    the people there are, never the gaps."""
    inputs, held = coded_world(spread=3)
    everyone = np.zeros(3 * len(PEOPLE), dtype=bool)
    everyone[::3] = True
    maps = Bitmaps(inputs, Moment(AS_OF), everyone, held)
    maps.tally((parse_rule(rule) for _n, rule, _e in CASES), ["events", "purchases"])  # worked out together
    for name, rule, expected in CASES:
        chosen = maps.of(parse_rule(rule))
        assert not (chosen & ~everyone).any(), name
        assert {PEOPLE[i // 3] for i in np.flatnonzero(chosen)} == expected, name


def test_tallies_worked_out_together_select_what_each_selects_alone(coded: tuple[RuleInputs, pa.Table]) -> None:
    """Every event count and order aggregate of the compiler's table, totalled in one pass over
    the events and one over the purchases, selects the people the compiled rule selects."""
    inputs, held = coded
    maps = Bitmaps(inputs, Moment(AS_OF), len(PEOPLE), held)
    nodes = [parse_rule(rule) for _n, rule, _e in CASES]
    maps.tally(nodes, ["events", "purchases"])
    tallies = [n for node in nodes for _p, n in walk(node) if tally_of(n, Moment(AS_OF)) is not None]
    assert len(maps.leaves) == len({repr(rule_to_dict(n)) for n in tallies}) >= 10
    assert {type(n).__name__ for n in tallies} == {"Performed", "Orders"}
    for (name, _rule, expected), node in zip(CASES, nodes, strict=True):
        chosen = maps.of(node)
        assert {PEOPLE[i] for i, inside in enumerate(chosen) if inside} == expected, name


def test_tallies_worked_out_ahead_are_read_not_totalled_again(coded: tuple[RuleInputs, pa.Table]) -> None:
    """In a full run the recent order aggregates come with RFM's totals (``RuleInputs.tallies``):
    the bitmaps total only the others, and every case still selects the same people."""
    inputs, held = coded
    assert inputs.purchases is not None
    nodes = [parse_rule(rule) for _n, rule, _e in CASES]
    tallies = recent_purchase_tallies(nodes, Moment(AS_OF))
    assert len(tallies) >= 3
    ahead = replace(inputs, tallies=purchase_totals(inputs.purchases, AS_OF, [], tallies))
    maps = Bitmaps(ahead, Moment(AS_OF), len(PEOPLE), held)
    maps.tally(nodes, ["purchases"])
    totalled = {
        tally_column(leaf) for node in nodes for _p, leaf in walk(node) if repr(rule_to_dict(leaf)) in maps.leaves
    }
    assert totalled and not totalled & set(tallies)
    for (name, _rule, expected), node in zip(CASES, nodes, strict=True):
        chosen = maps.of(node)
        assert {PEOPLE[i] for i, inside in enumerate(chosen) if inside} == expected, name


def events_by_identifier(inputs: RuleInputs, spread: int = 1) -> Keyed:
    """The world's events as the event log keeps them, by identifier: each person's events split
    between two identifiers of theirs (person ``c``'s are ``2c`` and ``2c + 1``); one event more
    of an identifier of no one, and one of an identifier not come yet (no key), each of them one
    that a rule on product views counts."""
    assert inputs.events is not None
    rows = inputs.events.to_pyarrow()
    person = rows.column("profile_id").to_numpy().astype(np.int64)
    key = 2 * person + np.arange(rows.num_rows) % 2
    nobody = 2 * len(PEOPLE) * spread
    people = np.repeat(np.arange(len(PEOPLE) * spread, dtype=np.int32), 2)
    # The identifier of no one; and last, one more of the last person's, whom nothing may be
    # counted for by mistake (a key of -1, say, taken as a place from the end).
    people = np.append(people, np.int32([-1, (len(PEOPLE) - 1) * spread]))
    extra = pa.concat_tables([rows.slice(0, 1)] * 2).drop_columns(["profile_id"])  # a view of S1, at 199
    kept = pa.concat_tables(
        [
            rows.drop_columns(["profile_id"]).append_column("identity_code", pa.array(key, pa.int32())),
            extra.append_column("identity_code", pa.array([nobody, None], pa.int32())),
        ]
    )
    return Keyed(ibis.memtable(kept), "identity_code", people)


@pytest.mark.parametrize("spread", [1, 3])
def test_event_counts_from_the_log_by_identifier_select_what_the_compiled_rule_selects(spread: int) -> None:
    """A run counts events from the log as kept, by identifier (``RuleInputs.keyed``): each row's
    person looked up, rows of no one's identifiers and of none counted for no one; every case of
    the compiler's table selects the same people, complements taken against the people there are."""
    inputs, held = coded_world(spread)
    everyone = np.zeros(len(PEOPLE) * spread, dtype=bool)
    everyone[::spread] = True
    keyed = replace(inputs, events=None, keyed={"events": events_by_identifier(inputs, spread)})
    maps = Bitmaps(keyed, Moment(AS_OF), everyone, held)
    performed = 0
    for name, rule, expected in CASES:
        node = parse_rule(rule)
        performed += sum(isinstance(leaf, Performed) for _p, leaf in walk(node))
        chosen = maps.of(node)
        assert not (chosen & ~everyone).any(), name
        assert {PEOPLE[i // spread] for i in np.flatnonzero(chosen)} == expected, name
    assert performed >= 8


def test_buckets_read_as_arrays_select_what_the_input_selects(coded: tuple[RuleInputs, pa.Table]) -> None:
    """A run gives the bitmaps each seed's buckets as an array over the codes, not as an input:
    every case of the compiler's table selects the same people."""
    inputs, held = coded
    assert inputs.buckets is not None
    table = inputs.buckets.to_pyarrow()
    arrays = {}
    for seed in set(table.column("seed").to_pylist()):
        mine = table.filter(pc.equal(table.column("seed"), seed))
        drawn = np.full(len(PEOPLE), -1, dtype=np.int32)
        drawn[mine.column("profile_id").to_numpy()] = mine.column("bucket").to_numpy()
        arrays[seed] = drawn
    maps = Bitmaps(replace(inputs, buckets=None), Moment(AS_OF), len(PEOPLE), held, arrays)
    for name, rule, expected in CASES:
        chosen = maps.of(parse_rule(rule))
        assert {PEOPLE[i] for i, inside in enumerate(chosen) if inside} == expected, name


def test_entries_and_exits_against_who_is_in_now(coded: tuple[RuleInputs, pa.Table]) -> None:
    inputs, _ = coded
    vip = {"type": "trait", "key": "vip", "value_type": "boolean", "op": "is_true"}
    specs = [
        SegmentSpec("sg_vip", "vip", vip),
        SegmentSpec("sg_rest", "rest", {"type": "not", "condition": {"type": "segment", "segment_id": "sg_vip"}}),
    ]
    # Now: sg_vip holds p2 (to leave) and p1 (to stay); sg_rest holds p3; p9 was merged away.
    held = pa.table({"profile_id": pa.array([1, 0, 2], pa.int32()), "segment_id": ["sg_vip", "sg_vip", "sg_rest"]})
    gone = pa.table({"profile_id": ["p9"], "segment_id": ["sg_rest"]})
    out = evaluate_segments(specs, inputs, Moment(AS_OF), len(PEOPLE), held, KEYS.take, gone)
    assert (out["sg_vip"].size, out["sg_vip"].entered.to_pylist(), out["sg_vip"].exited.to_pylist()) == (1, [], ["p2"])
    rest = out["sg_rest"]
    assert (rest.size, sorted(rest.entered.to_pylist()), sorted(rest.exited.to_pylist())) == (
        5,
        ["p2", "p4", "p5", "p6"],
        ["p9"],
    )


def test_who_is_in_each_segment_now_is_grouped_once(coded: tuple[RuleInputs, pa.Table]) -> None:
    inputs, _ = coded
    held = pa.table(
        {
            "profile_id": pa.array([3, 0, 5, 1, 0], pa.int32()),
            "segment_id": ["sg_b", "sg_a", "sg_b", "sg_c", "sg_b"],
        }
    )
    maps = Bitmaps(inputs, Moment(AS_OF), len(PEOPLE), held)
    assert {s: sorted(maps.before(s).tolist()) for s in ("sg_a", "sg_b", "sg_c", "sg_none")} == {
        "sg_a": [0],
        "sg_b": [0, 3, 5],
        "sg_c": [1],
        "sg_none": [],
    }
    assert np.flatnonzero(maps.segment("sg_b")).tolist() == [0, 3, 5]
    assert Bitmaps(inputs, Moment(AS_OF), len(PEOPLE)).before("sg_a").size == 0
