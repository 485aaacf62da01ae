"""Rule inputs made in arrays from the snapshots' files: each row's person found by a lookup in
an array indexed by a code (the identifier's, the order's) rather than by a join in the engine,
the same rows as the engine's definitions in ``inputs`` (tested equal on random data).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from siyu.analytics.inputs import CHANNEL_KINDS
from siyu.analytics.snapshots import CHANNELS, KINDS, PURPOSES, STATUSES


def latest_reach(identities: pa.Table, latest: pa.Table, people: int) -> pa.Table:
    """As ``kept_reachability`` (profile_id as the person's code, below ``people``), from a ledger
    of each identifier's latest record per channel and purpose only (the snapshot's), worked out
    in arrays: each identifier's person, kind and standing looked up by its code, and the people
    of each channel and purpose marked in a bitmap, each once. At 10M people this takes a tenth
    of the ranking, join and distinct in the engine. ``identities``: code, profile_code,
    kind_code, weak, shared; ``latest``: identity_code, channel_code, purpose_code, status_code."""

    def array(table: pa.Table, column: str) -> np.ndarray:  # as stored (int32 codes, int8 places)
        values: np.ndarray = table.column(column).fill_null(-1).to_numpy()
        return values

    def flag(column: str) -> np.ndarray:  # (a null is taken as set: weak or shared)
        values: np.ndarray = identities.column(column).fill_null(True).to_numpy()
        return values

    code = array(identities, "code")
    size = int(code.max()) + 1 if code.size else 0
    own = ~flag("weak") & ~flag("shared")
    owner = np.full(size, -1, dtype=np.int32)  # each identifier's person who can be reached on it
    owner[code[own]] = array(identities, "profile_code")[own]
    kind = np.full(size, len(KINDS), dtype=np.int8)  # (none of KINDS: _FITS's last place)
    kind[code] = identities.column("kind_code").fill_null(len(KINDS)).to_numpy()
    at = array(latest, "identity_code")
    channel, purpose = array(latest, "channel_code"), array(latest, "purpose_code")
    granted = (array(latest, "status_code") == STATUSES.index("granted")) & (at >= 0) & (at < size)
    granted &= (channel >= 0) & (purpose >= 0)
    at = at[granted]
    person = owner[at]
    fits = person >= 0
    # Which channel the record is for and what kind its identifier is, as one place in _FITS.
    place = channel[granted][fits].astype(np.int16) * _FITS.shape[1] + kind[at[fits]]
    fits[fits] = _FITS.ravel()[place]
    pair = channel[granted][fits].astype(np.int16) * len(PURPOSES) + purpose[granted][fits]
    person = person[fits]
    parts = []
    for found in np.flatnonzero(np.bincount(pair, minlength=len(CHANNELS) * len(PURPOSES))):
        marked = np.zeros(people, dtype=bool)
        marked[person[pair == found]] = True
        who = np.flatnonzero(marked).astype(np.int32)
        parts.append(
            pa.table(
                {
                    "profile_id": who,
                    "channel_code": pa.repeat(pa.scalar(int(found) // len(PURPOSES), pa.int8()), who.size),
                    "purpose_code": pa.repeat(pa.scalar(int(found) % len(PURPOSES), pa.int8()), who.size),
                }
            )
        )
    schema = pa.schema([("profile_id", pa.int32()), ("channel_code", pa.int8()), ("purpose_code", pa.int8())])
    return pa.concat_tables(parts).cast(schema) if parts else schema.empty_table()


def _channel_fits() -> np.ndarray:
    """Which kinds of identifier each channel sends to, by code: ``[channel_code, kind_code]``;
    the last place, a kind none of ``KINDS``, ads' alone."""
    fits = np.zeros((len(CHANNELS), len(KINDS) + 1), dtype=bool)
    fits[CHANNELS.index("ads"), :] = True
    for channel, kinds in CHANNEL_KINDS.items():
        fits[CHANNELS.index(channel), [KINDS.index(k) for k in kinds]] = True
    return fits


_FITS = _channel_fits()


class IdentifierFile:
    """The identifiers' snapshot, read once for the inputs made from it: code, profile_code,
    kind_code, weak, shared."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._table: pa.Table | None = None
        self._people: np.ndarray | None = None

    def table(self) -> pa.Table:
        if self._table is None:
            self._table = pq.read_table(self.path, columns=["code", "profile_code", "kind_code", "weak", "shared"])
        return self._table

    def people(self) -> np.ndarray:
        """Each identifier's person's code, by the identifier's code (``identifier_people``)."""
        if self._people is None:
            self._people = identifier_people(self.table())
        return self._people


def identifier_people(identities: pa.Table) -> np.ndarray:
    """Each identifier's person's code, by the identifier's code (-1 for no one). ``identities``:
    code, profile_code."""
    code = identities.column("code").to_numpy()
    out = np.full(int(code.max()) + 1 if code.size else 0, -1, dtype=np.int32)
    out[code] = identities.column("profile_code").fill_null(-1).to_numpy()
    return out


def _looked_up(table: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``table[key]``, -1 for a key of -1 (none) or past the table's end."""
    inside = (key >= 0) & (key < table.size)
    out = np.full(key.size, -1, dtype=table.dtype)
    out[inside] = table[key[inside]]
    return out


def purchases_by_lookup(orders: pa.Table, people: np.ndarray) -> pa.Table:
    """As ``inputs.kept_purchases``: each order paid and neither cancelled nor refunded whose
    buyer is someone's, the buyer's person looked up by the identifier's code (``people``, see
    ``identifier_people``), in the file's order (each buyer's orders together). ``orders``: code,
    buyer_code, paid_at, paid_fen, cancelled_at, refunded_at, platform_code (and store, kept if
    there). At 15M orders this takes a third of the join in the engine."""
    paid = pc.and_(
        pc.is_valid(orders.column("paid_at")),
        pc.and_(pc.is_null(orders.column("cancelled_at")), pc.is_null(orders.column("refunded_at"))),
    )
    whose = _looked_up(people, orders.column("buyer_code").fill_null(-1).to_numpy())
    columns = {
        "profile_id": whose,
        "order_code": orders.column("code"),
        "at": orders.column("paid_at"),
        "amount_fen": orders.column("paid_fen"),
        "platform_code": orders.column("platform_code"),
    }
    if "store" in orders.column_names:
        columns["store"] = orders.column("store")
    kept = paid.to_numpy(zero_copy_only=False) & (whose >= 0)
    return pa.table(columns).filter(pa.array(kept))


def items_by_lookup(
    purchases: pa.Table, items: pa.Table, products: pa.Table, wanted: Callable[[pa.Table], np.ndarray] | None = None
) -> pa.Table:
    """As ``inputs.purchased_items`` (profile_id, at, sku, category, brand): each item of each
    purchase, its purchase found by the order's code in arrays. Each SKU's category and brand are
    looked up once per distinct SKU, and each item's kept as a dictionary over those (no text
    copied); ``wanted`` (given those, sku, category and brand, one row per distinct SKU) says
    which SKUs to keep, so only those items are kept. ``purchases``:
    profile_id, order_code, at (``purchases_by_lookup``); ``items``: order_code, sku."""
    order = purchases.column("order_code").to_numpy()
    codes = items.column("order_code").fill_null(-1).to_numpy()
    size = max(int(order.max()) if order.size else -1, int(codes.max()) if codes.size else -1) + 1
    person = np.full(size, -1, dtype=np.int32)
    person[order] = purchases.column("profile_id").to_numpy()
    when = np.zeros(size, dtype=np.int64)
    when[order] = purchases.column("at").cast(pa.int64()).to_numpy()
    whose = _looked_up(person, codes)
    skus = items.column("sku").combine_chunks()
    encoded = skus if pa.types.is_dictionary(skus.type) else skus.dictionary_encode()
    distinct = encoded.dictionary.cast(pa.string())
    found = pc.index_in(distinct, value_set=products.column("sku").combine_chunks())
    each = pa.table(
        {
            "sku": distinct,
            "category": products.column("category").combine_chunks().take(found),
            "brand": products.column("brand").combine_chunks().take(found),
        }
    )
    entry = encoded.indices.fill_null(-1).to_numpy()
    keep = whose >= 0
    if wanted is not None:
        keep &= _looked_up(wanted(each).astype(np.int8), entry) == 1
    rows = np.flatnonzero(keep)
    chosen = pa.array(entry[rows].astype(np.int32), mask=entry[rows] < 0)  # (an item without a SKU: none)

    def per_sku(values: pa.Array | pa.ChunkedArray) -> pa.DictionaryArray:  # no text copied
        return pa.DictionaryArray.from_arrays(
            chosen, values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        )

    return pa.table(
        {
            "profile_id": whose[rows],
            "at": pa.array(when[codes[rows]]).cast(purchases.schema.field("at").type),
            "sku": per_sku(distinct),
            "category": per_sku(each.column("category")),
            "brand": per_sku(each.column("brand")),
        }
    )
