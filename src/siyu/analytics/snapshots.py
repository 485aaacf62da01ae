"""The batch engine's copies of the operational store: one Parquet file per source table per
workspace, brought up to date by moving only the rows changed since the last transfer.

A source's rows carry ``changed_at``, set by the database on every insert and update (migration
0016). A transfer reads the rows changed after the previous transfer's start, less ``OVERLAP``:
a transaction that wrote a row before that start but committed after it is read the next time
(as is a row SQLite dated to the whole second), and a row read twice replaces itself (rows are
keyed). Child rows that are replaced as a whole
with their parent (an order's items) move with the parent. Each file keeps the moment it is
current to in its own metadata, so a file and its mark are written together (a new file is
renamed over the old one). ``full=True`` moves every row again. Profiles carry no ``changed_at``:
they move by ``updated_at``, which every write of their traits sets, and are kept as trait rows
(``trait_rows``), replaced per profile. Small tables without
``changed_at`` (products) are copied whole each time; the event log, only ever appended to, is
read by its time-sortable ids (its primary key: no index of its own on the ingest path).

Identifiers and orders are numbered: each keeps a small integer ``code`` for as long as it is
in the file (the file's metadata holds the next free one, so a code is never given twice); each
order carries its buyer's code (``buyer_code``), each order item its order's (``order_code``), and
each event and consent record its identifier's (``identity_code``), so the engine finds a
purchase's person, an item's purchase and an event's person by joining integers. Numbered
sources move before those that carry their codes; should their codes ever be drawn afresh, every
row that carries one moves again. People are numbered too, in the identifiers' file: each
identifier carries its person's code (``profile_code``), the same for as long as the person has
an identifier there and never given to anyone else, so a run has its people numbered without
numbering them; each trait row carries its person's code too. An order's platform, one of a
few, is kept as its place among them too (``platform_code``), beside the text; so are an
identifier's kind and a consent record's channel, purpose and status.

Timestamps are kept as UTC without a time zone. The files belong to the batch runner: one process
writes them, DuckDB reads them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from siyu.analytics.trait_rows import trait_rows
from siyu.commerce.contracts import Platform
from siyu.commerce.tables import Order, OrderItem, Product
from siyu.core.clock import utcnow
from siyu.core.ids import id_floor
from siyu.identity.contracts import IdentifierKind
from siyu.identity.tables import Identity
from siyu.ingest.tables import Event
from siyu.profiles.consent import Channel, ConsentStatus, Purpose
from siyu.profiles.tables import ConsentRecord, Profile
from siyu.storage.arrow_transfer import arrow_schema, read_arrow
from siyu.storage.base import WorkspaceScoped
from siyu.storage.scoping import require_workspace

OVERLAP = timedelta(minutes=15)
# Closed sets of values a file keeps as their places too (``Source.enumerated``), in order.
PLATFORMS = tuple(p.value for p in Platform)
CHANNELS = tuple(c.value for c in Channel)
PURPOSES = tuple(p.value for p in Purpose)
STATUSES = tuple(s.value for s in ConsentStatus)
KINDS = tuple(k.value for k in IdentifierKind)
MARK_KEY = b"siyu.changed_through"
NEXT_CODE_KEY = b"siyu.next_code"
NEXT_VALUE_CODE_KEY = b"siyu.next_value_code"
# Which numbering of the values a file's codes are (new whenever they are drawn afresh): what
# is kept by code elsewhere (``drawn``) is of this numbering.
NUMBERING_KEY = b"siyu.numbering"
# The lists an enumerated column's codes are places in (``Source.enumerated``): when one
# changes, the file is written anew.
ENUMERATED_KEY = b"siyu.enumerated"
# Which rows a ledger's file keeps (``Source.latest_by``): when it changes, the file is written anew.
LATEST_KEY = b"siyu.latest"
# How many rows of a clustered file were added after its rows were last put in order.
UNCLUSTERED_KEY = b"siyu.unclustered"
# A clustered file is put in order again once more than this share of its rows came after.
UNCLUSTERED_SHARE = 0.125


@dataclass(frozen=True)
class Source:
    """A table as the batch engine copies it. ``parent``: rows replaced as a whole when their
    parent row changes, found by ``parent_key``."""

    name: str
    model: type[WorkspaceScoped]
    columns: tuple[str, ...]
    key: str = "id"
    parent: str | None = None
    parent_key: str | None = None
    whole: bool = False  # a small table without changed_at, copied whole every time
    # An append-only table whose time-sortable ids (this prefix) say when each row was written.
    id_prefix: str | None = None
    changed_column: str = "changed_at"
    # Rows as the snapshot keeps them (given the workspace's time zone), keyed by ``stored_key``.
    transform: Callable[[pa.Table, str], pa.Table] | None = None
    stored_key: str | None = None
    # Each row numbered with a stable small integer (``code``), kept for as long as the row is.
    numbered: bool = False
    # (column, source, stored column): each row carries the code of the numbered ``source`` row
    # its ``column`` names, so the engine joins on integers rather than on ids.
    coded: tuple[str, str, str] | None = None
    # What ``coded``'s column names in its source, and that source's code for it: a row's id and
    # code, or a person's id and code (``profile_id``, ``profile_code``).
    coded_by: tuple[str, str] = ("id", "code")
    # (column, stored column): each distinct value of ``column`` numbered with a stable small
    # integer, kept for as long as a row has the value; null for null.
    values_numbered: tuple[str, str] | None = None
    # (column, stored column, values) each: each row's value as its place in ``values``, a small
    # integer (null for a value not there), which the engine keeps in memory instead of the text.
    enumerated: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    # Rows with the same value of this column kept together in the file (see ``_write``).
    clustered_by: str | None = None
    # (column, source, its column): a row is kept only while its ``column`` value (when it has
    # one) is in ``source``'s file, so rows that became no one's leave with what they belonged to.
    kept_while: tuple[str, str, str] | None = None
    # (key columns, order columns): of a ledger whose every key's last word is all that counts,
    # the file keeps each key's latest row only (latest by the order columns, descending).
    latest_by: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    @property
    def stored_columns(self) -> tuple[str, ...]:
        """The columns its file keeps (a transformed source's are its transform's)."""
        extra = (
            (("code",) if self.numbered else ())
            + ((self.values_numbered[1],) if self.values_numbered else ())
            + tuple(stored for _column, stored, _values in self.enumerated)
            + ((self.coded[2],) if self.coded else ())
        )
        return self.columns + extra


ORDERS = Source(
    "orders",
    Order,
    (
        "id",
        "platform",
        "store",
        "buyer_identity_id",
        "status",
        "total_fen",
        "paid_fen",
        "ordered_at",
        "paid_at",
        "completed_at",
        "refunded_at",
        "cancelled_at",
    ),
    numbered=True,
    # A run keeps 100M purchases' platforms in memory: a byte each rather than the text.
    enumerated=(("platform", "platform_code", PLATFORMS),),
    coded=("buyer_identity_id", "identities", "buyer_code"),
    clustered_by="buyer_code",  # a run groups purchases by person: each buyer's orders together
)
ORDER_ITEMS = Source(
    "order_items",
    OrderItem,
    ("id", "order_id", "sku", "quantity", "unit_price_fen", "amount_fen"),
    parent="orders",
    parent_key="order_id",
    coded=("order_id", "orders", "order_code"),
)
IDENTITIES = Source(
    "identities",
    Identity,
    ("id", "profile_id", "kind", "weak", "shared"),
    numbered=True,
    values_numbered=("profile_id", "profile_code"),
    enumerated=(("kind", "kind_code", KINDS),),
)
EVENTS = Source(
    "events",
    Event,
    ("id", "identity_id", "type", "event", "timestamp", "properties", "group_id"),
    id_prefix="evt_",
    coded=("identity_id", "identities", "identity_code"),
    # Each rule on events asks about one event: with each event's rows together, its scan skips
    # the row groups of the others.
    clustered_by="event",
)
# The consent ledger, only ever appended to: who may be sent to where (``inputs.reachability``).
# What counts is each identifier's latest record for a channel and purpose, so the file keeps
# only those: a run reads no superseded record and ranks none.
CONSENTS = Source(
    "consents",
    ConsentRecord,
    ("id", "identity_id", "channel", "purpose", "status", "at"),
    id_prefix="cns_",
    enumerated=(
        ("channel", "channel_code", CHANNELS),
        ("purpose", "purpose_code", PURPOSES),
        ("status", "status_code", STATUSES),
    ),
    coded=("identity_id", "identities", "identity_code"),
    latest_by=(("identity_id", "channel", "purpose"), ("at", "id")),
)
PRODUCTS = Source("products", Product, ("sku", "name", "category", "brand", "price_fen"), key="sku", whole=True)
TRAITS = Source(
    "traits",
    Profile,
    ("id", "traits"),
    changed_column="updated_at",
    transform=trait_rows,
    stored_key="profile_id",
    coded=("profile_id", "identities", "profile_code"),
    coded_by=("profile_id", "profile_code"),
    # A person merged away (or erased) has no identifier left: their trait rows go too, so
    # whoever reads the traits finds only people's.
    kept_while=("profile_code", "identities", "profile_code"),
    # Each rule on traits asks about one key: with each key's rows together, its scan skips the
    # row groups of the others.
    clustered_by="key",
)
# Numbered sources go before those that carry their codes.
SOURCES = (IDENTITIES, ORDERS, ORDER_ITEMS, PRODUCTS, EVENTS, TRAITS, CONSENTS)


@dataclass(frozen=True)
class Transfer:
    """What one source's transfer moved."""

    source: str
    rows_moved: int
    rows_held: int
    full: bool
    duration_ms: int


def snapshot_dir(data_dir: Path, workspace_id: str) -> Path:
    return data_dir / "analytics" / workspace_id


def snapshot_path(data_dir: Path, workspace_id: str, source: str) -> Path:
    return snapshot_dir(data_dir, workspace_id) / f"{source}.parquet"


def changed_through(path: Path) -> datetime | None:
    """The moment a snapshot file is current to, or None if there is none."""
    if not path.exists():
        return None
    metadata = pq.read_schema(path).metadata or {}
    mark = metadata.get(MARK_KEY)
    return datetime.fromisoformat(mark.decode()) if mark else None


def refresh_snapshots(
    scoped: Session,
    data_dir: Path,
    *,
    full: bool = False,
    overlap: timedelta = OVERLAP,
    timezone: str = "Asia/Shanghai",
) -> list[Transfer]:
    """Bring the workspace's snapshot of every source up to date; returns what each moved.
    ``timezone``: the workspace's, which dates without one are read in."""
    workspace_id = require_workspace(scoped)
    folder = snapshot_dir(data_dir, workspace_id)
    folder.mkdir(parents=True, exist_ok=True)
    out: list[Transfer] = []
    changed: dict[str, pa.Array] = {}  # keys of the rows each incremental parent moved
    renumbered: set[str] = set()  # "source.code column" of codes drawn afresh
    for source in SOURCES:
        started = time.perf_counter()
        path = snapshot_path(data_dir, workspace_id, source.name)
        mark = None if full or not _same_columns(path, source) else changed_through(path)
        if source.coded is not None and f"{source.coded[1]}.{source.coded_by[1]}" in renumbered:
            mark = None  # every row's code is new
        began = utcnow()
        if source.whole:
            mark = None
            delta = read_arrow(scoped, source.model, source.columns)
        elif source.id_prefix is not None:
            # Only ever appended: the rows with ids minted since (less the overlap) are the new ones.
            floor = None if mark is None else id_floor(source.id_prefix, int((mark - overlap).timestamp() * 1000))
            delta = read_arrow(scoped, source.model, source.columns, after=None if floor is None else ("id", floor))
        elif source.parent is None:
            since = None if mark is None else mark - overlap
            delta = read_arrow(
                scoped, source.model, source.columns, changed_since=since, changed_column=source.changed_column
            )
            if mark is not None:
                changed[source.name] = delta.column(source.key)
        elif mark is not None and source.parent in changed and source.parent_key is not None:
            parents = changed[source.parent].to_pylist()
            delta = (
                read_arrow(scoped, source.model, source.columns, where_in=(source.parent_key, parents))
                if parents
                else arrow_schema(source.model, source.columns).empty_table()
            )
        else:
            mark = None  # the parent moved in full: so do its children
            delta = read_arrow(scoped, source.model, source.columns)
        incremental = mark is not None
        moved = delta.num_rows
        if source.transform is not None:
            delta = source.transform(delta, timezone)
        metadata: dict[bytes, bytes] = {ENUMERATED_KEY: _enumerations(source)} if source.enumerated else {}
        if source.latest_by is not None:
            metadata[LATEST_KEY] = latest_mark(source)
        if source.numbered:
            delta, next_code, fresh = _number(delta, path, source.key)
            metadata[NEXT_CODE_KEY] = str(next_code).encode()
            if fresh:
                renumbered.add(f"{source.name}.code")
        if source.values_numbered is not None:
            delta, next_value_code, fresh = _number_values(delta, path, *source.values_numbered)
            metadata[NEXT_VALUE_CODE_KEY] = str(next_value_code).encode()
            metadata[NUMBERING_KEY] = uuid.uuid4().hex.encode() if fresh else numbering_of(path).encode()
            if fresh:
                renumbered.add(f"{source.name}.{source.values_numbered[1]}")
        for column, stored, values in source.enumerated:
            delta = delta.append_column(stored, places_in(delta.column(column), values))
        if source.coded is not None:
            column, numbered, stored = source.coded
            if incremental:  # rows whose row in ``numbered`` had not come yet try again
                delta = pa.concat_tables([delta, _uncoded(path, delta, _replace_column(source), column, stored)])
            delta = _with_codes(delta, column, snapshot_path(data_dir, workspace_id, numbered), stored, source.coded_by)
        replace_by = _replace_column(source) if incremental else None
        kept = None
        if source.kept_while is not None:
            column, owner, theirs = source.kept_while
            owned = snapshot_path(data_dir, workspace_id, owner)
            kept = f"(old.{column} IS NULL OR old.{column} IN (SELECT {theirs} FROM read_parquet('{_quoted(owned)}')))"
        held = _write(path, delta, began, replace_by, metadata, source.clustered_by, kept, source.latest_by)
        elapsed = int((time.perf_counter() - started) * 1000)
        out.append(Transfer(source.name, moved, held, not incremental, elapsed))
    return out


def places_in(column: pa.Array | pa.ChunkedArray, values: tuple[str, ...]) -> pa.Array | pa.ChunkedArray:
    """Each value's place in ``values`` (null for one not there), as bytes."""
    places: pa.Array | pa.ChunkedArray = pc.index_in(column, value_set=pa.array(values, pa.string()))
    return places.cast(pa.int8())


def numbering_of(path: Path) -> str:
    """Which numbering a numbered file's value codes are ("" for none recorded)."""
    metadata = (pq.read_schema(path).metadata or {}) if path.exists() else {}
    return str(metadata.get(NUMBERING_KEY, b"").decode())


def _same_columns(path: Path, source: Source) -> bool:
    """Whether the file keeps the columns the source now has (a new version may add some: the
    file is then written anew)."""
    if not path.exists():
        return True
    schema = pq.read_schema(path)
    names = tuple(schema.names)
    if source.transform is not None:
        return source.coded is None or source.coded[2] in names
    metadata = schema.metadata or {}
    if source.enumerated and metadata.get(ENUMERATED_KEY) != _enumerations(source):
        return False  # its codes are places in lists that have changed since
    if source.latest_by is not None and metadata.get(LATEST_KEY) != latest_mark(source):
        return False  # it keeps other rows of the ledger (all of them, say)
    return names == source.stored_columns


def _enumerations(source: Source) -> bytes:
    """The lists a file's enumerated columns count places in, as its metadata keeps them."""
    return json.dumps({stored: list(values) for _column, stored, values in source.enumerated}).encode()


def keeps_latest(path: Path, source: Source) -> bool:
    """Whether the file keeps only the latest rows of the source's ledger (``Source.latest_by``)."""
    return path.exists() and (pq.read_schema(path).metadata or {}).get(LATEST_KEY) == latest_mark(source)


def latest_mark(source: Source) -> bytes:
    """Which of a ledger's rows its file keeps (``Source.latest_by``), as its metadata says."""
    assert source.latest_by is not None
    keys, order = source.latest_by
    return json.dumps({"latest_of": list(keys), "by": list(order)}).encode()


def _next_free(path: Path, mark: bytes) -> tuple[bool, int]:
    """Whether the file has no codes of this kind yet (they are to be drawn afresh), and the
    next free one its metadata keeps under ``mark``."""
    metadata = (pq.read_schema(path).metadata or {}) if path.exists() else {}
    return (True, 0) if mark not in metadata else (False, int(metadata[mark]))


def _number(delta: pa.Table, path: Path, key: str) -> tuple[pa.Table, int, bool]:
    """``delta`` with each row's ``code``: the one its key has in the file, or for a key new to it
    the next free ones, in key order. Codes are never given again, even when their rows are gone
    (the file keeps the next free one). Also that next free code, and whether the codes were drawn
    afresh (there was no file with codes)."""
    fresh, first_free = _next_free(path, NEXT_CODE_KEY)
    old = (
        "SELECT NULL::VARCHAR AS key, NULL::INTEGER AS code LIMIT 0"
        if fresh
        else f"SELECT {key} AS key, code FROM read_parquet('{_quoted(path)}')"
    )
    numbered = _over_delta(
        delta,
        f"SELECT delta.*, coalesce(old.code, {first_free} - 1 + row_number() OVER "
        f"(PARTITION BY old.code IS NULL ORDER BY delta.{key}))::INTEGER AS code "
        f"FROM delta LEFT JOIN ({old}) AS old ON old.key = delta.{key}",
    )
    top = pc.max(numbered.column("code")).as_py()
    return numbered, first_free if top is None else max(first_free, int(top) + 1), fresh


def _number_values(delta: pa.Table, path: Path, column: str, stored: str) -> tuple[pa.Table, int, bool]:
    """``delta`` with ``stored``: the code of each row's ``column`` value, the one the value has in
    the file, or for a value new to it the next free ones, in value order (null for null). Codes
    are never given again. Also the next free one, and whether the codes were drawn afresh."""
    fresh, first_free = _next_free(path, NEXT_VALUE_CODE_KEY)
    old = (
        "SELECT NULL::VARCHAR AS value, NULL::INTEGER AS code LIMIT 0"
        if fresh
        else f"SELECT DISTINCT {column} AS value, {stored} AS code FROM read_parquet('{_quoted(path)}') "
        f"WHERE {column} IN (SELECT {column} FROM delta)"
    )
    numbered = _over_delta(
        delta,
        f"SELECT delta.*, CASE WHEN delta.{column} IS NOT NULL THEN coalesce(old.code, {first_free} - 1 + "
        f"dense_rank() OVER (PARTITION BY old.code IS NULL ORDER BY delta.{column} NULLS LAST))::INTEGER "
        f"END AS {stored} FROM delta LEFT JOIN ({old}) AS old ON old.value = delta.{column}",
    )
    top = pc.max(numbered.column(stored)).as_py()
    return numbered, first_free if top is None else max(first_free, int(top) + 1), fresh


def _uncoded(path: Path, delta: pa.Table, key: str, column: str, stored: str) -> pa.Table:
    """The rows of the file that name a row of the numbered source yet carry no code (it was not
    in that source's file when they moved), less those ``delta`` replaces (by ``key``); as
    ``delta``'s columns."""
    columns = ", ".join(f'old."{c}"' for c in delta.schema.names)
    found = _over_delta(
        delta.select([key]),
        f"SELECT {columns} FROM read_parquet('{_quoted(path)}') AS old "
        f"WHERE old.{stored} IS NULL AND old.{column} IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM delta WHERE delta.{key} = old.{key})",
    )
    return found.cast(delta.schema)


def _with_codes(
    delta: pa.Table, column: str, numbered: Path, stored: str, by: tuple[str, str] = ("id", "code")
) -> pa.Table:
    """``delta`` with ``stored``: the code (``by[1]``) of what ``column`` names in ``numbered``
    (by ``by[0]``), null when it names nothing there."""
    name, code = by
    codes = (
        f"SELECT id, code FROM read_parquet('{_quoted(numbered)}')"
        if by == ("id", "code")
        else f"SELECT DISTINCT {name} AS id, {code} AS code FROM read_parquet('{_quoted(numbered)}') "
        f"WHERE {name} IN (SELECT {column} FROM delta)"
    )
    return _over_delta(
        delta, f"SELECT delta.*, n.code AS {stored} FROM delta LEFT JOIN ({codes}) AS n ON n.id = delta.{column}"
    )


def _over_delta(delta: pa.Table, sql: str) -> pa.Table:
    """What ``sql`` gives over ``delta`` (the table ``delta``), on a DuckDB of its own."""
    con = duckdb.connect()
    try:
        con.register("delta", delta)
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def _replace_column(source: Source) -> str:
    return source.stored_key or source.parent_key or source.key


def _write(
    path: Path,
    delta: pa.Table,
    mark: datetime,
    replace_by: str | None,
    metadata: dict[bytes, bytes] | None = None,
    clustered_by: str | None = None,
    kept: str | None = None,
    latest_by: tuple[tuple[str, ...], tuple[str, ...]] | None = None,
) -> int:
    """Write the snapshot: ``delta`` alone, or (``replace_by``) the old rows whose ``replace_by``
    value is not in ``delta`` (and, given ``kept``, that pass it: a condition on ``old``), then
    ``delta``. Returns the rows the snapshot holds.

    ``clustered_by``: rows with the same value of that column are kept together, so that grouping
    by it (or by what it joins to) finds each group's rows in one run, which a hash aggregate
    does about three times as fast as rows scattered at random. ``delta`` is put in that order;
    the old rows keep theirs, so the rows added since the file was last in order trail behind,
    each group of them together; when they are more than ``UNCLUSTERED_SHARE`` of the file, the
    whole file is put in order again.

    ``latest_by`` (``Source.latest_by``): of the rows of each key, only the latest is kept. Only
    the keys ``delta`` has rows of are ranked again: the rest keep theirs."""
    delta = naive_utc(delta)
    if latest_by is not None:
        delta = _over_delta(delta, f"SELECT * FROM delta {_latest_only(latest_by)}").cast(delta.schema)
    if clustered_by is not None:
        delta = delta.sort_by([(clustered_by, "ascending")])
    marks = {**(metadata or {}), MARK_KEY: mark.isoformat().encode()}
    partial = path.with_suffix(".parquet.partial")
    if replace_by is None or not path.exists():
        if clustered_by is not None:
            marks[UNCLUSTERED_KEY] = b"0"
        pq.write_table(delta.replace_schema_metadata(marks), partial)
        partial.replace(path)
        return int(delta.num_rows)
    order = ""
    if clustered_by is not None:
        trailing = _unclustered(path) + delta.num_rows
        if trailing > UNCLUSTERED_SHARE * (pq.read_metadata(path).num_rows + delta.num_rows):
            order, trailing = f" ORDER BY {clustered_by}", 0
        marks[UNCLUSTERED_KEY] = str(trailing).encode()
    schema = delta.schema.with_metadata(marks)
    old = (
        f"SELECT * FROM read_parquet('{_quoted(path)}') AS old "
        f"WHERE NOT EXISTS (SELECT 1 FROM delta WHERE delta.{replace_by} = old.{replace_by}) "
        f"{'' if kept is None else 'AND ' + kept}"
    )
    if latest_by is None:
        rows = f"{old} UNION ALL SELECT * FROM delta"
    else:  # the old rows of keys with no new row stand; the others are ranked with the new
        keys = latest_by[0]
        same_key = " AND ".join(f"d.{k} = kept.{k}" for k in keys)
        touched = f"EXISTS (SELECT 1 FROM delta d WHERE {same_key})"
        ranked = f"SELECT * FROM kept WHERE {touched} UNION ALL SELECT * FROM delta"
        rows = (
            f"WITH kept AS ({old}) SELECT * FROM kept WHERE NOT {touched} UNION ALL "
            f"SELECT * FROM ({ranked}) {_latest_only(latest_by)}"
        )
    con = duckdb.connect()
    try:
        con.register("delta", delta)
        merged = con.sql(f"SELECT * FROM ({rows}){order}").to_arrow_reader()
        held = 0
        with pq.ParquetWriter(partial, schema) as writer:
            for batch in merged:
                writer.write_batch(batch.cast(schema.remove_metadata()))
                held += int(batch.num_rows)
    finally:
        con.close()
    partial.replace(path)
    return held


def _latest_only(latest_by: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    """The clause keeping each key's latest row of a query's rows."""
    keys, order = latest_by
    by = ", ".join(f'"{c}" DESC' for c in order)
    return f"QUALIFY row_number() OVER (PARTITION BY {', '.join(keys)} ORDER BY {by}) = 1"


def _unclustered(path: Path) -> int:
    """How many rows of the file came after it was last put in order (all, if it never was)."""
    metadata = pq.read_schema(path).metadata or {}
    mark = metadata.get(UNCLUSTERED_KEY)
    return int(mark) if mark is not None else pq.read_metadata(path).num_rows


def naive_utc(table: pa.Table) -> pa.Table:
    """Timestamps as UTC without a time zone, as the snapshots keep them: the engine then computes
    on plain numbers (DuckDB's conversions of zoned values cost a third of an RFM run's time)."""
    fields = [
        pa.field(f.name, pa.timestamp(f.type.unit)) if pa.types.is_timestamp(f.type) and f.type.tz else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
