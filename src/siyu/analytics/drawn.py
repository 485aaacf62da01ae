"""Everyone's bucket for a seed, kept beside the snapshots from one run or preview to the next.

A person's bucket for a seed never changes (``rules.buckets``), and the MD5 of every person is
most of what drawing buckets costs. So each seed's buckets are kept by person code, one Parquet
file per seed with the seed and the people's numbering (``snapshots.NUMBERING_KEY``) in its
metadata, and only the people new since are drawn. A file is written whole under a temporary
name and renamed over the old one, so a reader never sees half of one; a file of another
numbering of the people (or another seed) is drawn anew.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from ibis.backends import BaseBackend

from siyu.analytics.snapshots import NUMBERING_KEY
from siyu.rules.buckets import bucket_sql

SEED_KEY = b"siyu.seed"
SCHEMA = pa.schema([pa.field("profile_id", pa.int32()), pa.field("bucket", pa.int32())])


def bucket_path(folder: Path, seed: str) -> Path:
    return folder / f"{hashlib.sha256(seed.encode()).hexdigest()[:24]}.parquet"


def drawn_buckets(
    con: BaseBackend, folder: Path, numbering: str, seed: str, everyone: np.ndarray, people: str
) -> pa.Table:
    """profile_id (code), bucket: the bucket for ``seed`` of everyone (the codes ``everyone`` marks),
    from the kept file, drawing (in ``con``, from ``people``: key, profile_id) only those it does
    not hold; the file is brought up to date."""
    path = bucket_path(folder, seed)
    kept = _kept(path, seed, numbering)
    codes = kept.column("profile_id").to_numpy()
    inside = codes < everyone.size
    held = np.zeros(everyone.size, dtype=bool)
    held[codes[inside]] = True
    kept = kept.filter(pa.array(inside)) if not inside.all() else kept
    kept = kept.filter(pa.array(everyone[kept.column("profile_id").to_numpy()]))  # people merged away
    missing = np.flatnonzero(everyone & ~held).astype(np.int32)
    if not missing.size:
        return kept
    con.create_table("bucket_missing", pa.table({"profile_id": missing}), temp=True, overwrite=True)
    literal = "'" + seed.replace("'", "''") + "'"
    con.raw_sql(
        f"CREATE OR REPLACE TEMP TABLE bucket_drawn AS SELECT p.profile_id, {bucket_sql(literal, 'p.key')} AS bucket "
        f"FROM {people} AS p JOIN bucket_missing AS m ON m.profile_id = p.profile_id"
    )
    drawn = con.table("bucket_drawn").to_pyarrow()
    out = pa.concat_tables([kept, drawn.cast(SCHEMA)])
    _keep(path, out, seed, numbering)
    return out


def _kept(path: Path, seed: str, numbering: str) -> pa.Table:
    if path.exists():
        table = pq.read_table(path)
        metadata = table.schema.metadata or {}
        if metadata.get(SEED_KEY) == seed.encode() and metadata.get(NUMBERING_KEY) == numbering.encode():
            return table.replace_schema_metadata(None).cast(SCHEMA)
    return SCHEMA.empty_table()


def _keep(path: Path, table: pa.Table, seed: str, numbering: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    pq.write_table(table.replace_schema_metadata({SEED_KEY: seed.encode(), NUMBERING_KEY: numbering.encode()}), partial)
    partial.replace(path)
