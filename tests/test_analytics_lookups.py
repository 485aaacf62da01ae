"""Inputs made in arrays (``analytics.lookups``) against their definitions in the engine, on
random data: reachability (identifiers of every kind, of no one, weak or shared; records of
every channel, purpose and status, some of values outside the lists)."""

from __future__ import annotations

import ibis
import numpy as np
import pyarrow as pa
import pytest

from siyu.analytics.inputs import kept_reachability
from siyu.analytics.lookups import latest_reach
from siyu.analytics.snapshots import CHANNELS, KINDS, PURPOSES, STATUSES


def ledger(seed: int, identifiers: int, people: int) -> tuple[pa.Table, pa.Table]:
    """Identifiers (with a gap in their codes, as removed ones leave) and each one's latest
    record per channel and purpose, as the snapshot keeps them."""
    rng = np.random.default_rng(seed)
    code = np.sort(rng.choice(identifiers * 2, identifiers, replace=False)).astype(np.int32)
    owner = rng.integers(0, people, identifiers).astype(np.int32)
    kind = rng.integers(0, len(KINDS) + 1, identifiers)  # one past the list: a kind it does not have
    identities = pa.table(
        {
            "code": code,
            "profile_code": pa.array(owner, mask=rng.random(identifiers) < 0.1),
            "kind_code": pa.array(kind.astype(np.int8), mask=kind == len(KINDS)),
            "weak": rng.random(identifiers) < 0.1,
            "shared": rng.random(identifiers) < 0.1,
        }
    )
    keys = {
        (int(i), int(c), int(p))
        for i, c, p in zip(
            rng.choice(code, identifiers * 3),
            rng.integers(0, len(CHANNELS) + 1, identifiers * 3),
            rng.integers(0, len(PURPOSES), identifiers * 3),
            strict=True,
        )
    }
    i, c, p = (np.array(v) for v in zip(*sorted(keys), strict=True))
    status = rng.integers(0, len(STATUSES), i.size)
    latest = pa.table(
        {
            "id": [f"cns_{n:06d}" for n in range(i.size)],
            "at": pa.array(rng.integers(0, 10**12, i.size), pa.timestamp("us")),
            "identity_code": pa.array(i.astype(np.int32), mask=rng.random(i.size) < 0.05),  # not come yet
            "channel_code": pa.array(c.astype(np.int8), mask=c == len(CHANNELS)),
            "purpose_code": p.astype(np.int8),
            "status_code": status.astype(np.int8),
        }
    )
    return identities, latest


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_latest_reach_is_the_engines_reachability(seed: int) -> None:
    identities, latest = ledger(seed, identifiers=3_000, people=1_000)
    con = ibis.duckdb.connect()
    kept = kept_reachability(
        ibis.memtable(identities.rename_columns(["code", "profile_id", "kind_code", "weak", "shared"])),
        ibis.memtable(latest),
    ).to_pyarrow()
    expected = set(zip(*(kept.column(c).to_pylist() for c in kept.column_names), strict=True))
    made = latest_reach(identities, latest, 1_000)
    rows = list(zip(*(made.column(c).to_pylist() for c in ("profile_id", "channel_code", "purpose_code")), strict=True))
    assert len(expected) > 100 and set(rows) == expected and len(rows) == len(expected)  # each once
    assert made.schema.field("profile_id").type == pa.int32()
    con.disconnect()


def test_no_records_reach_no_one() -> None:
    identities, latest = ledger(1, identifiers=10, people=5)
    made = latest_reach(identities, latest.slice(0, 0), 5)
    assert made.num_rows == 0 and made.column_names == ["profile_id", "channel_code", "purpose_code"]
