"""Everyone's buckets are kept between runs: what is kept is read back, only people new since are
drawn, people merged away are left out, and a file of another numbering or seed is drawn anew."""

from __future__ import annotations

from pathlib import Path

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from siyu.analytics.drawn import bucket_path, drawn_buckets
from siyu.rules.buckets import bucket_of

KEYS = ["pf_a", "pf_b", "pf_gone", "pf_c", "pf_d", "pf_new"]


def people(con: ibis.BaseBackend, codes: list[int]) -> str:
    table = pa.table({"key": [KEYS[c] for c in codes], "profile_id": pa.array(codes, pa.int32())})
    con.create_table("coded_people", table, temp=True, overwrite=True)
    return "coded_people"


def buckets(table: pa.Table) -> dict[int, int]:
    return dict(zip(table.column("profile_id").to_pylist(), table.column("bucket").to_pylist(), strict=True))


def test_buckets_are_kept_and_only_new_people_drawn(tmp_path: Path) -> None:
    con = ibis.duckdb.connect()
    everyone = np.array([True, True, False, True, True])
    first = drawn_buckets(con, tmp_path, "n1", "ab", everyone, people(con, [0, 1, 3, 4]))
    assert buckets(first) == {c: bucket_of("ab", KEYS[c]) for c in (0, 1, 3, 4)}
    path = bucket_path(tmp_path, "ab")
    assert path.exists() and not list(tmp_path.glob("*.partial"))

    # Mark what is kept, so what is read back can be told from what is drawn again.
    kept = pq.read_table(path)
    marked = kept.set_column(1, "bucket", pa.array([-1] * kept.num_rows, pa.int32()))
    pq.write_table(marked.replace_schema_metadata(kept.schema.metadata), path)
    # pf_b is merged away; pf_new arrives.
    now = np.array([True, False, False, True, True, True])
    second = buckets(drawn_buckets(con, tmp_path, "n1", "ab", now, people(con, [0, 3, 4, 5])))
    assert second == {0: -1, 3: -1, 4: -1, 5: bucket_of("ab", "pf_new")}
    assert buckets(pq.read_table(path))[5] == bucket_of("ab", "pf_new")  # the file holds them too

    # Another numbering of the people, or another seed: drawn anew.
    again = buckets(drawn_buckets(con, tmp_path, "n2", "ab", now, people(con, [0, 3, 4, 5])))
    assert again == {c: bucket_of("ab", KEYS[c]) for c in (0, 3, 4, 5)}
    other = buckets(drawn_buckets(con, tmp_path, "n2", "holdout", now, people(con, [0, 3, 4, 5])))
    assert other == {c: bucket_of("holdout", KEYS[c]) for c in (0, 3, 4, 5)}
    assert bucket_path(tmp_path, "holdout") != path
    con.disconnect()
