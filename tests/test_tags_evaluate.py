"""A run's rule tags are evaluated as bitmaps over coded people: every case of the rule
compiler's table as a tag selects the people worked out by hand, a tag asking about another
sees this run's answer, and a computed tag takes its value from the run's results."""

from __future__ import annotations

import ibis
import numpy as np
import pyarrow as pa

from siyu.rules.compiler import Moment, inputs_needed
from siyu.rules.nodes import parse_rule
from siyu.tags.evaluate import TAGS_TABLE, TagSpec, evaluate_tags
from tests.test_rules_compiler import AS_OF, CASES, PEOPLE
from tests.test_segments_evaluate import coded_world

HELD = pa.schema([("profile_id", pa.int32()), ("tag_id", pa.string()), ("value", pa.string())])


def test_rule_tags_hold_the_people_of_their_rules() -> None:
    """Every case but those asking about segments, which a tag's rule cannot."""
    inputs, _ = coded_world()
    con = ibis.duckdb.connect()
    cases = [c for c in CASES if "segments" not in inputs_needed(parse_rule(c[1]))]
    specs = [TagSpec(f"tg_{i}", name, "rule", rule, None) for i, (name, rule, _e) in enumerate(cases)]
    assert inputs.tags is not None
    held = inputs.tags.to_pyarrow().cast(HELD)  # the tags the rules ask about, held now
    out = evaluate_tags(con, specs, inputs, {}, Moment(AS_OF), held, len(PEOPLE))
    for spec, (name, _rule, expected) in zip(specs, cases, strict=True):
        members = out[spec.id]
        assert {PEOPLE[c] for c in members.column("profile_id").to_pylist()} == expected, name
        assert set(members.column("value").to_pylist()) <= {""}, name
    con.disconnect()


def test_a_tag_asking_about_another_sees_this_runs_answer_and_computed_tags_their_value() -> None:
    inputs, _ = coded_world()
    con = ibis.duckdb.connect()
    loyal = {"type": "lifecycle", "stages": ["loyal", "dormant"]}
    specs = [
        TagSpec("tg_loyal", "loyal", "rule", loyal, None),  # p1, p2 (p3 held it before: it leaves)
        TagSpec("tg_stage", "stage", "computed", None, {"source": "lifecycle_stage"}),
        TagSpec(
            "tg_not_loyal",
            "not loyal",
            "rule",
            {"type": "not", "condition": {"type": "tag", "tag_id": "tg_loyal"}},
            None,
        ),
    ]
    held = pa.table({"profile_id": pa.array([2], pa.int32()), "tag_id": ["tg_loyal"], "value": [""]}, schema=HELD)
    assert inputs.lifecycle is not None
    out = evaluate_tags(con, specs, inputs, {"lifecycle": inputs.lifecycle}, Moment(AS_OF), held, len(PEOPLE))
    assert sorted(out["tg_loyal"].column("profile_id").to_pylist()) == [0, 1]
    assert sorted(out["tg_not_loyal"].column("profile_id").to_pylist()) == [2, 3, 4, 5]
    stages = dict(
        zip(out["tg_stage"].column("profile_id").to_pylist(), out["tg_stage"].column("value").to_pylist(), strict=True)
    )
    assert stages == {0: "loyal", 1: "dormant", 2: "lost", 3: "new"}
    # Only the tag a later rule asks about was added to the table the rules read.
    added = con.table(TAGS_TABLE).to_pyarrow()
    assert set(added.column("tag_id").to_pylist()) == {"tg_loyal"}
    assert np.array_equal(np.sort(added.column("profile_id").to_numpy()), [0, 1])
    con.disconnect()
