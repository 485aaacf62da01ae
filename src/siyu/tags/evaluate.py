"""Who has each rule and computed tag, as the batch run works it out: computed tags read a column
of the run's results, rule tags are evaluated as bitmaps over the people's codes
(``rules.bitmaps``: the rule compiler's meaning, each leaf asked once for all the tags). Tags are
evaluated in dependency order, each one a later rule asks about added to the tag table the rules
read, so a rule asking about another rule tag sees this run's answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ibis.backends import BaseBackend

from siyu.rules.bitmaps import Bitmaps
from siyu.rules.catalog import tags_used
from siyu.rules.compiler import Moment, RuleInputs
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
    people: int | np.ndarray,
) -> dict[str, pa.Table]:
    """Each tag's holders (profile_id, value), by tag id, for ``specs`` in evaluation order.
    People are the codes a run numbers them with; ``people`` says which codes are someone's
    (see ``Bitmaps``): the rules are evaluated as bitmaps, each leaf asked once for all the tags
    and their recent order aggregates worked out together.

    ``results``: the run's tables a computed tag reads (rfm, lifecycle, preferences, leads);
    ``held``: profile_id, tag_id, value of the tags people have now (manual ones count as they
    are; rule and computed ones are replaced as each is evaluated)."""
    evaluated = {s.id for s in specs}
    kept = held.filter(pc.invert(pc.is_in(held.column("tag_id"), pa.array(list(evaluated)))))
    holders = con.create_table(TAGS_TABLE, kept.select(["profile_id", "tag_id", "value"]), temp=True, overwrite=True)
    rules = {s.id: parse_rule(s.rule) for s in specs if s.kind != "computed" and s.rule is not None}
    asked = set().union(*(tags_used(rule) for rule in rules.values()))  # by later rules
    maps = Bitmaps(replace(inputs, tags=holders), moment, people)
    maps.tally(rules.values())
    out: dict[str, pa.Table] = {}
    for spec in specs:
        if spec.id in rules:
            codes = np.flatnonzero(maps.of(rules[spec.id])).astype(np.int32)
            members = pa.table({"profile_id": codes, "value": _empty_strings(len(codes))})
        else:
            members = _computed(spec, results).to_pyarrow()
        out[spec.id] = members
        if members.num_rows and spec.id in asked:
            con.insert(TAGS_TABLE, members.add_column(1, "tag_id", pa.repeat(spec.id, members.num_rows)))
    return out


def _empty_strings(n: int) -> pa.Array:
    """``n`` empty strings (a rule tag's value), made without a string each."""
    return pa.StringArray.from_buffers(n, pa.py_buffer(np.zeros(n + 1, dtype=np.int32)), pa.py_buffer(b""))


def _computed(spec: TagSpec, results: Mapping[str, ir.Table]) -> ir.Table:
    assert spec.computed is not None
    table_name, column = COMPUTED_SOURCES[spec.computed["source"]]
    table = results[table_name]
    valued = table.filter(table[column].notnull())
    return valued.select(profile_id=valued.profile_id, value=valued[column].cast("string"))
