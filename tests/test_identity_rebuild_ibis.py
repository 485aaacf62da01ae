"""The rebuild as Ibis expressions gives exactly the one-machine rebuild's people: on DuckDB on
random observations and a synthetic brand, and on Spark (local mode) on small data."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import ibis
import pyarrow as pa

from siyu.demo.generator import SyntheticBrand
from siyu.identity.partition import Observation, resolve
from siyu.identity.rebuild import Rebuilt, rebuild
from siyu.identity.rebuild_ibis import rebuild_on
from tests.test_identity_partition import N1, N2, P1, POOL, U1, U2, K, _records, ident, obs


def same(a: Rebuilt, b: Rebuilt) -> bool:
    shared = {(r["kind"], r["scope"], r["value"]) for r in a.shared.to_pylist()}
    return a.people() == b.people() and shared == {(r["kind"], r["scope"], r["value"]) for r in b.shared.to_pylist()}


def random_cases(n: int, seed: int) -> Iterator[list[Observation]]:
    rnd = random.Random(seed)
    for _ in range(n):
        yield [frozenset(rnd.sample(POOL, rnd.randint(1, 4))) for _ in range(rnd.randint(1, 25))]


def test_on_duckdb_equal_to_the_one_machine_rebuild_and_the_reference() -> None:
    con = ibis.duckdb.connect()
    for observations in random_cases(40, seed=5):
        records = _records(observations)
        got = rebuild_on(con, records)
        assert same(got, rebuild(records))
        assert got.people() == set(resolve(observations).people)


def test_on_duckdb_with_operators_constraints_and_shared_values() -> None:
    con = ibis.duckdb.connect()
    # A store's phone, seen with four unionids (over the limit of three): it links nobody.
    shared_phone = [obs(P1, ident(K.UNIONID, f"store-{n}")) for n in range(4)]
    observations = [obs(U1, P1), obs(P1, N1), obs(N2), *shared_phone]
    records = _records(observations)
    got = rebuild_on(con, records, must_link=[(N1, N2)], cannot_link=[(U1, N1)])
    assert same(got, rebuild(records, must_link=[(N1, N2)], cannot_link=[(U1, N1)]))
    assert got.shared.num_rows == 1


def test_on_duckdb_the_synthetic_brand() -> None:
    brand = SyntheticBrand(seed=4, customers=2000, until=datetime(2026, 11, 1, tzinfo=UTC))
    ids = brand.chunk(0).identities
    records = pa.table(
        {
            "obs": list(range(ids.num_rows)),
            "kind": ids.column("kind"),
            "scope": ids.column("scope"),
            "value": ids.column("value"),
        }
    )
    assert same(rebuild_on(ibis.duckdb.connect(), records), rebuild(records))


def test_on_spark_equal_to_the_one_machine_rebuild(spark: Any) -> None:
    for observations in random_cases(2, seed=9):
        records = _records(observations)
        assert same(rebuild_on(spark, records), rebuild(records))
    observations = [obs(U1, P1), obs(P1, N1), obs(N2), obs(U2, P1)]
    records = _records(observations)
    got = rebuild_on(spark, records, must_link=[(N1, N2)])
    assert same(got, rebuild(records, must_link=[(N1, N2)]))
    # Working tables are temporary views: nothing is left in the warehouse.
    assert [t.name for t in spark._session.catalog.listTables() if not t.isTemporary] == []
