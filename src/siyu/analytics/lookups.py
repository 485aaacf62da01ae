"""Rule inputs made in arrays from the snapshots' files: each row's person found by a lookup in
an array indexed by the identifier's code rather than by a join in the engine, the same rows as
the engine's definitions in ``inputs`` (tested equal on random data).

Only where the arrays are small: at 100M orders, making the purchases this way took longer
than the engine's join (each new large array is memory touched for the first time).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
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
