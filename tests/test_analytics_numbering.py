"""People numbered for a run: every identifier carries its person's code, the codes run 0…n-1 with
one per person, and turning codes back gives the ids they stand for."""

from __future__ import annotations

from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq

from siyu.analytics.rule_inputs import numbered_identities


def test_each_person_gets_one_code_and_identifiers_of_no_one_get_none(tmp_path: Path) -> None:
    path = tmp_path / "identities.parquet"
    pq.write_table(
        pa.table(
            {
                "id": ["i1", "i2", "i3", "i4", "i5"],
                "profile_id": ["pB", "pA", None, "pB", "pC"],
                "kind": ["phone", "phone", "phone", "openid", "email"],
                "weak": [False] * 5,
                "shared": [False, False, True, False, False],
                "code": pa.array([4, 0, 1, 2, 3], pa.int32()),
            }
        ),
        path,
    )
    con = ibis.duckdb.connect()
    numbered, keys = numbered_identities(con, path)
    rows = {r["id"]: r for r in numbered.to_pyarrow().to_pylist()}
    assert sorted(keys.to_pylist()) == ["pA", "pB", "pC"]
    assert rows["i3"]["profile_id"] is None
    people = {i: rows[i]["profile_id"] for i in ("i1", "i2", "i4", "i5")}
    assert sorted(set(people.values())) == [0, 1, 2]
    assert people["i1"] == people["i4"] != people["i2"]
    assert {i: keys[c].as_py() for i, c in people.items()} == {"i1": "pB", "i2": "pA", "i4": "pB", "i5": "pC"}
    assert {i: r["code"] for i, r in rows.items()} == {"i1": 4, "i2": 0, "i3": 1, "i4": 2, "i5": 3}
    con.disconnect()
