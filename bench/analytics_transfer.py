"""The batch run end to end from the operational store: generated orders and identities loaded
into SQLite or PostgreSQL, then a full transfer into the engine's snapshots, the computations, and
an incremental transfer after 1% more orders arrive.

    python bench/analytics_transfer.py [--orders 1000000] [--customers 100000] [--database-url URL]

Prints the time of each phase, the transfer's rows per second, and the compute time against the
same computation as hand-written DuckDB SQL on the same snapshots (see analytics_batch.py).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from analytics_batch import generate, run_siyu, run_sql

from siyu.accounts import facade
from siyu.analytics.snapshots import refresh_snapshots
from siyu.commerce.tables import Order
from siyu.identity.tables import Identity
from siyu.storage import migrate
from siyu.storage.bulk import append_rows
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

CHUNK = 100_000
NOW = datetime.now(UTC)


def load(
    db: Database, scope: Scope, table: pa.Table, model: type[Order] | type[Identity], extra: dict[str, object]
) -> None:
    """Insert the rows through the store's bulk path, in transactions of CHUNK rows. The codes the
    generator numbers its snapshots with are the engine's, not the store's: they are left out."""
    table = table.drop_columns([c for c in ("code", "platform_code", "buyer_code") if c in table.column_names])
    columns = [*table.column_names, *extra]
    for start in range(0, table.num_rows, CHUNK):
        part = table.slice(start, CHUNK)
        values = [part.column(c).to_pylist() for c in table.column_names]
        rows = [(*row, *extra.values()) for row in zip(*values, strict=True)]
        with db.transaction(scope) as s:
            append_rows(s, model, columns, rows, on_conflict=("id",))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    source = tmp / "generated"
    source.mkdir()
    generate(source, args.orders + args.orders // 100, args.customers, seed=2)
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    db = Database(url)
    migrate.upgrade(db.engine)
    with db.transaction(Scope.unscoped_system()) as s:
        ws = facade.create_workspace(s, name="bench", slug=f"bench-{time.time_ns()}")
    scope = Scope.workspace(ws.id)

    identities = pq.read_table(source / "identities.parquet")
    orders = pq.read_table(source / "orders.parquet")
    orders = orders.append_column("order_no", orders.column("id")).append_column(
        "buyer_kind", pc.if_else(pc.equal(orders.column("platform"), "tmall"), "taobao_nick", "jd_pin")
    )
    orders = orders.append_column("buyer_id", orders.column("buyer_identity_id"))
    # The store keeps UTC with a zone; the generator writes the snapshots' zoneless UTC.
    zoned = pa.schema(
        [pa.field(f.name, pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type) else f for f in orders.schema]
    )
    orders = orders.cast(zoned)
    first, later = orders.slice(0, args.orders), orders.slice(args.orders)
    started = time.perf_counter()
    people = identities.select(["id", "profile_id", "kind"]).append_column("value", identities.column("id"))
    load(db, scope, people, Identity, {"scope": "", "weak": False, "shared": False, "first_seen_at": NOW})
    load(db, scope, first, Order, {"ingested_at": NOW})
    took = time.perf_counter() - started
    backend = url.split(":", 1)[0]
    print(f"{backend}: loaded {identities.num_rows:,} identities and {args.orders:,} orders in {took:.1f} s")

    data_dir = tmp / "data"
    time.sleep(2.5)  # so that the incremental transfer's look-back below reaches none of these
    started = time.perf_counter()
    with db.read(scope) as r:
        moved = refresh_snapshots(r, data_dir)
    full_s = time.perf_counter() - started
    rows = sum(t.rows_moved for t in moved)
    print(f"full transfer: {rows:,} rows in {full_s:.2f} s ({rows / full_s:,.0f} rows/s)")

    folder = data_dir / "analytics" / ws.id
    started = time.perf_counter()
    run_siyu(folder)
    siyu_s = time.perf_counter() - started
    started = time.perf_counter()
    run_sql(folder)
    sql_s = time.perf_counter() - started
    print(f"compute (RFM and lifecycle): siyu {siyu_s:.2f} s, hand-written DuckDB SQL {sql_s:.2f} s")

    time.sleep(2.5)  # past the look-back below: SQLite dates rows to the second
    load(db, scope, later, Order, {"ingested_at": datetime.now(UTC)})
    started = time.perf_counter()
    with db.read(scope) as r:
        # A nightly run looks back 15 minutes past the last transfer; here the last was a minute ago.
        moved = refresh_snapshots(r, data_dir, overlap=timedelta(seconds=2))
    inc_s = time.perf_counter() - started
    by_source = ", ".join(f"{t.source} {t.rows_moved:,} of {t.rows_held:,}" for t in moved)
    print(f"incremental transfer after {later.num_rows:,} new orders: {inc_s:.2f} s ({by_source})")
    print(f"end to end, full: {full_s + siyu_s:.1f} s; incremental: {inc_s + siyu_s:.1f} s")
    db.dispose()


if __name__ == "__main__":
    main()
