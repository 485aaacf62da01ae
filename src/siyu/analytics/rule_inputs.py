"""The tables rules read (``RuleInputs``), assembled from the workspace's snapshots in an engine:
for the batch run's tags and segments, and for previews of a rule being written.

The batch run hands in this run's RFM and lifecycle results; a preview reads the copies of the
results the store holds, kept beside the snapshots. Tags and segment memberships come from the
store. Buckets are drawn only for the seeds the rules at hand use.

Many rules over the same people (a run's segments, a builder's previews) are evaluated over
``coded`` inputs: each table the rules read is materialised once, in the engine's memory, with
people as small integers instead of their ids, so that every rule's joins, groupings and set
operations work on integers; only the people who enter or leave a segment (or a preview's
sample) are turned back into ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from ibis.backends import BaseBackend

from siyu.analytics.drawn import drawn_buckets
from siyu.analytics.inputs import (
    community_groups,
    kept_purchases,
    kept_reachability,
    named_platforms,
    named_reach,
    people,
    person_events,
    purchased_items,
    purchases,
    reachability,
)
from siyu.analytics.lookups import IdentifierFile, latest_reach
from siyu.analytics.snapshots import (
    CONSENTS,
    NUMBERING_KEY,
    keeps_latest,
    numbering_of,
    snapshot_dir,
    snapshot_path,
)
from siyu.analytics.writeback import CODE_COLUMN
from siyu.rules.compiler import Keyed, RuleInputs
from siyu.rules.nodes import Bought, HasTag, Node, Orders, Performed, Trait, walk

RFM_RESULTS = "rfm.parquet"
LIFECYCLE_RESULTS = "lifecycle.parquet"
BUCKETS_TABLE = "rule_buckets"


def snapshot_inputs(con: BaseBackend, data_dir: Path, workspace_id: str, bought: ir.Table | None = None) -> RuleInputs:
    """Everything rules read that the snapshots hold: people, traits, purchases and their items,
    events, reachability, community groups. ``bought``: the purchases, if the caller has them."""

    def read(source: str) -> ir.Table:
        return con.read_parquet(snapshot_path(data_dir, workspace_id, source))

    identities, events = read("identities"), read("events")
    everyone = people(identities)
    traits = read("traits")  # only people's: rows of people merged away leave at transfer
    if bought is None:
        bought = purchases(read("orders"), identities)
    return RuleInputs(
        people=everyone,
        traits=traits,
        purchases=bought,
        events=person_events(events, identities),
        items=purchased_items(bought, read("order_items"), read("products")),
        reach=reachability(identities, read("consents")),
        groups=community_groups(events, identities),
    )


def kept_results(con: BaseBackend, data_dir: Path, workspace_id: str) -> tuple[ir.Table, ir.Table]:
    """The RFM and lifecycle results the store holds, from their copies (empty before any run)."""
    folder = snapshot_dir(data_dir, workspace_id) / "results"
    rfm_path, stages_path = folder / RFM_RESULTS, folder / LIFECYCLE_RESULTS
    rfm = (
        con.read_parquet(rfm_path)
        if rfm_path.exists()
        else ibis.memtable(
            pa.table(
                {
                    "profile_id": pa.array([], pa.string()),
                    "r_score": pa.array([], pa.int64()),
                    "f_score": pa.array([], pa.int64()),
                    "m_score": pa.array([], pa.int64()),
                    "rfm_group": pa.array([], pa.string()),
                }
            )
        )
    )
    stages = (
        con.read_parquet(stages_path)
        if stages_path.exists()
        else ibis.memtable(pa.table({"profile_id": pa.array([], pa.string()), "stage": pa.array([], pa.string())}))
    )
    return rfm, stages


def kept_by_code(data_dir: Path, workspace_id: str) -> dict[str, pa.Table]:
    """The kept RFM and lifecycle copies (as ``kept_results``) keyed by person code, each that
    carries the codes of the people's present numbering: ``profile_id`` is the code, and may be
    one no one has any more (people merged away since the run that kept it). Read in Arrow, the
    groups and stages as dictionaries over their few values (which the rules' tests read faster
    than text, and a read in the engine and a copy out took twice as long)."""
    folder = snapshot_dir(data_dir, workspace_id) / "results"
    numbering = numbering_of(snapshot_path(data_dir, workspace_id, "identities")).encode()
    out: dict[str, pa.Table] = {}
    for name, path in (("rfm", folder / RFM_RESULTS), ("lifecycle", folder / LIFECYCLE_RESULTS)):
        if not path.exists() or not numbering:
            continue
        schema = pq.read_schema(path)
        if CODE_COLUMN in schema.names and (schema.metadata or {}).get(NUMBERING_KEY) == numbering:
            read = RULES_READ[name]  # only what rules read of it
            kept = pq.read_table(path, columns=[CODE_COLUMN, *read], read_dictionary=["rfm_group", "stage"])
            out[name] = kept.rename_columns(["profile_id", *read])
    return out


# What rules read of the kept results (``RuleInputs``).
RULES_READ = {"rfm": ("r_score", "f_score", "m_score", "rfm_group"), "lifecycle": ("stage",)}


CODES_TABLE = "rule_people"


@dataclass(frozen=True)
class Asked:
    """The trait keys and event names a set of rules asks about, whether any names a store, the
    categories, brands and SKUs they ask whether people bought (field, value), and the tags they
    ask who has."""

    traits: frozenset[str]
    events: frozenset[str]
    stores: bool = True
    bought: frozenset[tuple[str, str]] = frozenset()
    tags: frozenset[str] = frozenset()

    @classmethod
    def of(cls, nodes: Iterable[Node]) -> Asked:
        leaves = [n for node in nodes for _, n in walk(node)]
        return cls(
            frozenset(n.key for n in leaves if isinstance(n, Trait)),
            frozenset(n.event for n in leaves if isinstance(n, Performed)),
            names_a_store(leaves),
            frozenset((n.field, v) for n in leaves if isinstance(n, Bought) for v in n.values),
            frozenset(n.tag_id for n in leaves if isinstance(n, HasTag)),
        )

    @property
    def bought_by_field(self) -> dict[str, list[str]]:
        """The values the rules ask whether people bought, by field (category, brand, sku)."""
        fields: dict[str, list[str]] = {}
        for field_name, value in sorted(self.bought):
            fields.setdefault(field_name, []).append(value)
        return fields

    def lines(self, items: ir.Table, products: ir.Table) -> tuple[ir.Table, ir.Table]:
        """The order items (and products) that can be of what ``items`` keeps: of a SKU named, or
        of a product of a category or brand named. Picked before the items are joined to their
        purchases, so only those are (a third of them, for three categories of ten); ``items``
        then picks from them as from all."""
        fields = self.bought_by_field
        named = [products[f].isin(values) for f, values in fields.items() if f != "sku"]
        chosen = products.filter(ibis.or_(*named)) if named else products.limit(0)
        kept = items.sku.isin(chosen.sku)
        if "sku" in fields:
            kept |= items.sku.isin(fields["sku"])
        return items.filter(kept), products

    def items(self, items: ir.Table) -> ir.Table:
        """Only the purchased items the rules ask about: of the categories, brands or SKUs named."""
        fields = self.bought_by_field
        if not fields:
            return items.limit(0)
        return items.filter(ibis.or_(*(items[f].isin(values) for f, values in fields.items())))


def _holding(tags: ir.Table | pa.Table, asked: frozenset[str]) -> ir.Table | pa.Table:
    """The rows of ``tags`` (who holds which) of the tags ``asked`` about."""
    wanted = sorted(asked)
    if isinstance(tags, pa.Table):
        return tags.filter(pc.is_in(tags.column("tag_id"), value_set=pa.array(wanted, pa.string())))
    return tags.filter(tags.tag_id.isin(wanted)) if wanted else tags.limit(0)


def names_a_store(nodes: Iterable[Node]) -> bool:
    """Whether any of ``nodes`` (or what they hold) is an order condition on a store: only then
    do the purchases need theirs."""
    return any(isinstance(n, Orders) and n.store is not None for node in nodes for _, n in walk(node))


def _as_is(table: ir.Table) -> ir.Table:
    return table


# The inputs a coded run keeps with codes for names, and how they are named as read.
NAMED: dict[str, Callable[[ir.Table], ir.Table]] = {"purchases": named_platforms, "reach": named_reach}

CODED = ("traits", "rfm", "lifecycle", "tags", "purchases", "events", "items", "reach", "groups", "segments")
# The inputs a batch run reads where they lie, each query from the snapshot: every leaf over them
# picks its rows by one trait key or event name, which the scan filters on, so copying all of
# them into memory first costs more than it saves (at 10M people: traits 7 s to copy against
# 1.5 s more across eight trait leaves; events 7.4 s against 1.6 s across six event leaves).
# So are the identifiers: a run reads them for each input made from them (purchases, reach,
# each event leaf…), each time only the columns it needs, which costs less than the copy (0.6 s
# at 11M identifiers).
# The preview keeps every input in memory, for it asks again and again.
READ_IN_PLACE = frozenset({"traits", "events", "identities"})


@dataclass
class Coded:
    """Rule inputs with people as integer codes (``profile_id`` INTEGER, below ``len(keys)``),
    materialised in the engine's memory table by table as rules first need them. ``source``: the
    inputs as expressions already coded (from the snapshots); ``by_id``: inputs keyed by ids
    (results, tags), coded on the way in; ``by_code``: inputs already keyed by code (kept
    results, ``kept_by_code``), whose codes no one has any more are left out on the way in;
    ``keys[code]`` is the person's id (null for a code no one has)."""

    con: BaseBackend
    people: ir.Table  # key (the id), profile_id (the code)
    keys: pa.Array
    source: RuleInputs  # (its purchases and reach as kept, with codes for names: ``NAMED``)
    # Where everyone's buckets are kept between runs (``drawn``), and which numbering of the
    # people the codes are.
    kept_buckets: tuple[Path, str]
    by_id: dict[str, ir.Table | pa.Table] = field(default_factory=dict)
    by_code: dict[str, pa.Table] = field(default_factory=dict)
    tables: dict[str, ir.Table] = field(default_factory=dict)
    drawn: dict[str, pa.Table] = field(default_factory=dict)  # each seed's buckets: profile_id (code), bucket
    closed: bool = False  # its engine is gone
    in_place: frozenset[str] = frozenset()  # inputs queried from the snapshots, never copied in
    lines: tuple[ir.Table, ir.Table] | None = None  # order items and products, which items are made from
    asked: Asked | None = None  # what the rules ask, when they are known
    # Inputs made in arrays (already coded, channels and the like as codes) when first needed,
    # instead of from ``source``.
    made: dict[str, Callable[[], pa.Table]] = field(default_factory=dict)
    arrays: dict[str, pa.Table] = field(default_factory=dict)  # those made, as made
    # Inputs also given as their rows are kept (``RuleInputs.keyed``), made when first needed.
    keyed_by: dict[str, Callable[[], Keyed]] = field(default_factory=dict)
    keyed: dict[str, Keyed] = field(default_factory=dict)

    def inputs(self, needed: Iterable[str]) -> RuleInputs:
        """The coded inputs, with every table of ``needed`` (names of ``RuleInputs`` fields)
        materialised, except those read in place."""
        needed = list(needed)
        if "buckets" in needed and "buckets" not in self.tables and self.drawn:
            parts = [t.add_column(1, "seed", pa.repeat(seed, t.num_rows)) for seed, t in sorted(self.drawn.items())]
            self.tables["buckets"] = self.con.create_table(
                BUCKETS_TABLE, pa.concat_tables(parts), temp=True, overwrite=True
            )
        for name in needed:
            if name not in CODED or name in self.tables:
                continue
            if name in self.by_code:
                self.tables[name] = ibis.memtable(self._someones(self.by_code[name]))
            elif name in self.by_id:
                table = self.by_id[name]
                if name == "tags" and self.asked is not None:  # only the tags the rules ask about
                    table = _holding(table, self.asked.tags)
                self.replace(name, table)
            elif name in self.made:
                self.arrays[name] = self.made[name]()
                self.tables[name] = NAMED.get(name, _as_is)(ibis.memtable(self.arrays[name]))
            elif name == "items" and self.lines is not None:
                # From the purchases in memory, rather than joining the orders to their buyers again.
                bought = self.inputs(["purchases"]).purchases
                assert bought is not None
                if self.asked is not None:  # the rules are known: only the items they ask about
                    made = self.asked.items(purchased_items(bought, *self.asked.lines(*self.lines)))
                else:
                    made = purchased_items(bought, *self.lines)
                self.tables[name] = self.con.create_table("coded_items", made, temp=True, overwrite=True)
            elif (table := getattr(self.source, name)) is not None:
                if name not in self.in_place:
                    table = self.con.create_table(f"coded_{name}", table, temp=True, overwrite=True)
                # Kept with codes for closed sets of names (``kept_purchases``, ``kept_reachability``),
                # named as read.
                self.tables[name] = NAMED.get(name, _as_is)(table)
        for name in needed:
            if name in self.keyed_by and name not in self.keyed:
                self.keyed[name] = self.keyed_by[name]()
        return RuleInputs(people=self.people.select("profile_id"), **self.tables, keyed=dict(self.keyed))

    def _someones(self, table: pa.Table) -> pa.Table:
        """The rows of ``table`` (by code) of people there are: a lookup in the mask of who is
        someone, kept in Arrow for the rules to read (a join and a copy into the engine cost
        a second at 10M people)."""
        codes = table.column("profile_id").to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        everyone = self.everyone
        there = codes < everyone.size
        there[there] = everyone[codes[there]]
        return table if there.all() else table.filter(pa.array(there))

    def encode(self, table: ir.Table | pa.Table) -> ir.Table:
        """``table`` with each ``profile_id`` replaced by its code; rows of people who are not
        there are left out."""
        if isinstance(table, pa.Table):
            table = ibis.memtable(table)
        joined = table.join(self.people, table.profile_id == self.people.key)
        rest = [c for c in table.columns if c != "profile_id"]
        return joined.select(self.people.profile_id, *(joined[c] for c in rest))

    def replace(self, name: str, table: ir.Table | pa.Table) -> None:
        """Use ``table`` (ids, not codes) as the input ``name`` from now on."""
        self.tables[name] = self.con.create_table(f"coded_{name}", self.encode(table), temp=True, overwrite=True)

    def draw(self, seeds: Iterable[str]) -> None:
        """Everyone's bucket for each of ``seeds`` (as ``bucket_of`` draws it from their ids), those
        kept from earlier runs read back (``drawn``). The input ``buckets`` is made of every seed
        drawn when rules first ask for it; ``buckets_by_code`` gives one seed's as an array."""
        new = sorted(set(seeds) - set(self.drawn))
        if not new:
            return
        folder, numbering = self.kept_buckets
        everyone = self.everyone
        for seed in new:
            self.drawn[seed] = drawn_buckets(self.con, folder, numbering, seed, everyone, CODES_TABLE)
        self.tables.pop("buckets", None)  # made again, with these seeds too, when next asked for

    def buckets_by_code(self, seed: str) -> np.ndarray:
        """Each code's bucket for ``seed`` (drawn first), -1 for a code no one has."""
        table = self.drawn[seed]
        out = np.full(len(self.keys), -1, dtype=np.int32)
        out[table.column("profile_id").to_numpy()] = table.column("bucket").to_numpy()
        return out

    @property
    def everyone(self) -> np.ndarray:
        """Whether each code is someone's: a mask over the codes."""
        return np.asarray(self.keys.is_valid().to_numpy(zero_copy_only=False), dtype=bool)

    def decode(self, codes: pa.Array | pa.ChunkedArray) -> pa.Array:
        return self.keys.take(codes)

    def ids_of(self, codes: pa.Array) -> pa.DictionaryArray:
        """The ids of ``codes`` as a dictionary over everyone's ids: none copied (those who enter
        50 segments of 10M people on their first run are 100M ids, 2.5 s to copy). For the
        segments' changes, listed once as they are written."""
        return pa.DictionaryArray.from_arrays(codes, self.keys)

    @property
    def numbering(self) -> str:
        """Which numbering of the people the codes are (see ``snapshots``)."""
        return self.kept_buckets[1]

    def decoded(self, table: pa.Table, keep_code: bool = False) -> pa.Table:
        """``table`` with each person's code in ``profile_id`` turned back into their id; with
        ``keep_code``, the code kept beside it as ``profile_code``."""
        at = table.schema.get_field_index("profile_id")
        codes = table.column("profile_id")
        out = table.set_column(at, "profile_id", self.decode(codes))
        return out.append_column(CODE_COLUMN, codes) if keep_code else out


def coded_snapshot_inputs(
    con: BaseBackend,
    data_dir: Path,
    workspace_id: str,
    by_id: dict[str, ir.Table | pa.Table],
    asked: Asked | None = None,
    in_place: frozenset[str] = frozenset(),
    stores: bool = True,
    by_code: dict[str, pa.Table] | None = None,
) -> Coded:
    """Everyone in the snapshots by their code, and the inputs rules read, coded: the
    identifiers carry their person's code, so purchases, events, reachability and groups come
    out coded with no join more than by ids; traits and ``by_id`` (RFM and lifecycle results,
    tags) are coded by one join each, when first needed, unless ``by_code`` has them by code.
    With ``asked`` (the rules are known), only the traits and events they ask about are read in,
    and the purchases' stores only if they name one (else ``stores`` says whether to).
    ``in_place``: inputs each query reads from the snapshots (``READ_IN_PLACE`` for a run) rather
    than from a copy in memory."""

    def read(source: str) -> ir.Table:
        return con.read_parquet(snapshot_path(data_dir, workspace_id, source))

    path = snapshot_path(data_dir, workspace_id, "identities")
    numbered, keys = numbered_identities(con, path, copy="identities" not in in_place)
    held = np.flatnonzero(keys.is_valid().to_numpy(zero_copy_only=False)).astype(np.int32)
    # Everyone's id and code, kept in Arrow (a copy into the engine costs 0.5 s at 10M people).
    people = pa.table({"key": keys.take(pa.array(held)), "profile_id": pa.array(held)})
    codes = con.create_view(CODES_TABLE, ibis.memtable(people), overwrite=True)
    events = read("events")
    traits = read("traits")
    if asked is not None:
        traits = traits.filter(traits.key.isin(sorted(asked.traits))) if asked.traits else traits.limit(0)
    bought = kept_purchases(read("orders"), numbered, store=asked.stores if asked is not None else stores)
    lines = read("order_items"), read("products")
    if asked is not None:
        events = events.filter(events.event.isin(sorted(asked.events))) if asked.events else events.limit(0)
    done = person_events(events, numbered)
    source = RuleInputs(
        people=codes.select("profile_id"),
        # Only people's rows (those of people merged away leave at transfer), once coded.
        traits=traits.filter(traits.profile_code.notnull()).select(
            traits.profile_code.name("profile_id"), "key", "kind", "text", "number", "time", "flag"
        ),
        purchases=bought,
        events=done,
        items=purchased_items(bought, *lines),
        reach=kept_reachability(numbered, read("consents")),
        groups=community_groups(read("events"), numbered),
    )
    identifiers = IdentifierFile(path)  # read once, for the inputs made in arrays
    made: dict[str, Callable[[], pa.Table]] = {}
    consents = snapshot_path(data_dir, workspace_id, "consents")
    if keeps_latest(consents, CONSENTS):  # (a file from before any transfer since may not)

        def reach() -> pa.Table:
            latest = pq.read_table(consents, columns=["identity_code", "channel_code", "purpose_code", "status_code"])
            return latest_reach(identifiers.table(), latest, len(keys))

        made["reach"] = reach

    def events_by_identifier() -> Keyed:  # the event log as kept, by identifier
        return Keyed(events, "identity_code", identifiers.people())

    kept = (snapshot_dir(data_dir, workspace_id) / "buckets", numbering_of(path))
    return Coded(
        con,
        codes,
        keys,
        source,
        kept,
        dict(by_id),
        dict(by_code or {}),
        lines=lines,
        in_place=in_place,
        asked=asked,
        made=made,
        # A run, which reads the events in place, counts them by identifier (``rules.bitmaps``);
        # the preview, which compiles whole rules, has no use for it.
        keyed_by={"events": events_by_identifier} if "events" in in_place else {},
    )


def numbered_identities(con: BaseBackend, path: Path, copy: bool = True) -> tuple[ir.Table, pa.Array]:
    """The identifiers with their person's code in ``profile_id`` (null for no one's), copied
    into the engine's memory (or, without ``copy``, read from the snapshot each time); and the
    people's ids by code (``keys[code]``; null for a code no one has any more). The snapshot
    numbers the people (``profile_code``): this only reads the codes in."""
    snapshot = con.read_parquet(path)
    # Not their ids, which no rule reads (at 11M identifiers, a second to keep in memory).
    numbered = snapshot.select("kind_code", "weak", "shared", "code", profile_id=snapshot.profile_code)
    if copy:
        numbered = con.create_table("coded_identities", numbered, temp=True, overwrite=True)
    table = pq.read_table(path, columns=["profile_id", "profile_code"])
    codes = table.column("profile_code").combine_chunks()
    held = np.flatnonzero(codes.is_valid().to_numpy(zero_copy_only=False))
    values = codes.to_numpy(zero_copy_only=False)[held].astype(np.int64)
    at = np.full(int(values.max()) + 1 if values.size else 0, -1, dtype=np.int64)
    at[values] = held  # for each code, a row of the person's (any: they all name the same person)
    rows = pa.array(at, mask=at < 0)
    return numbered, table.column("profile_id").combine_chunks().take(rows).cast(pa.string())
