"""Who has each rule and computed tag, as the batch run works it out: computed tags read a column
of the run's results, rule tags are compiled by the rule compiler. Tags are evaluated in
dependency order, each one's holders added to the tag table the later rules read, so a rule
asking about another rule tag sees this run's answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends import BaseBackend

from siyu.rules.compiler import Moment, RuleInputs, compile_rule
from siyu.rules.nodes import parse_rule
from siyu.tags.contracts import COMPUTED_SOURCES

TAGS_TABLE = "tag_holders"


@dataclass(frozen=True)
class TagSpec:
    """A tag as the batch run needs it."""

    id: str
    name: str
    kind: str
    rule: dict[str, Any] | None
    computed: dict[str, Any] | None


def evaluate_tags(
    con: BaseBackend,
    specs: Sequence[TagSpec],
    inputs: RuleInputs,
    results: Mapping[str, ir.Table],
    moment: Moment,
    held: pa.Table,
) -> dict[str, pa.Table]:
    """Each tag's holders (profile_id, value), by tag id, for ``specs`` in evaluation order.
    People are as the inputs have them (ids, or the codes a run numbers them with).

    ``results``: the run's tables a computed tag reads (rfm, lifecycle, preferences, leads);
    ``held``: profile_id, tag_id, value of the tags people have now (manual ones count as they
    are; rule and computed ones are replaced as each is evaluated)."""
    evaluated = {s.id for s in specs}
    kept = held.filter(pa.compute.invert(pa.compute.is_in(held.column("tag_id"), pa.array(list(evaluated)))))
    holders = con.create_table(TAGS_TABLE, kept.select(["profile_id", "tag_id", "value"]), temp=True, overwrite=True)
    inputs = replace(inputs, tags=holders)
    out: dict[str, pa.Table] = {}
    for spec in specs:
        members = _members(spec, inputs, results, moment).to_pyarrow()
        out[spec.id] = members
        if members.num_rows:
            con.insert(
                TAGS_TABLE,
                members.append_column("tag_id", pa.array([spec.id] * members.num_rows)).select(
                    ["profile_id", "tag_id", "value"]
                ),
            )
    return out


def _members(spec: TagSpec, inputs: RuleInputs, results: Mapping[str, ir.Table], moment: Moment) -> ir.Table:
    if spec.kind == "computed":
        assert spec.computed is not None
        table_name, column = COMPUTED_SOURCES[spec.computed["source"]]
        table = results[table_name]
        valued = table.filter(table[column].notnull())
        return valued.select(profile_id=valued.profile_id, value=valued[column].cast("string"))
    assert spec.rule is not None
    chosen = compile_rule(parse_rule(spec.rule), inputs, moment)
    return chosen.select("profile_id", value=ibis.literal(""))
