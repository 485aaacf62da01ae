"""The synthetic brand as a library: deterministic per (seed, until), streamed in fixed chunks.

``SyntheticBrand(seed=7, customers=10_000_000).chunks()`` yields Arrow tables chunk by chunk, so
10M customers and 100M orders are generated in bounded memory; each chunk has its own random
stream derived from (seed, chunk number), so the output never depends on how it is consumed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from siyu.demo.events import generate_events
from siyu.demo.orders import Catalogue, build_catalogue, generate_orders
from siyu.demo.people import generate_people

CHUNK_PEOPLE = 20_000
DEFAULT_UNTIL = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Chunk:
    index: int
    people: pa.Table  # ground truth: one row per real person
    identities: pa.Table  # what each channel knows, with the true person_id
    orders: pa.Table
    items: pa.Table
    events: pa.Table


class SyntheticBrand:
    def __init__(
        self,
        *,
        seed: int = 1,
        customers: int = 1000,
        until: datetime = DEFAULT_UNTIL,
        history_days: int = 730,
        orders_per_buyer: float = 3.0,
    ) -> None:
        if customers < 0:
            raise ValueError("customers must be zero or more")
        if until.tzinfo is None:
            raise ValueError("until must be time-zone aware")
        self.seed = seed
        self.customers = customers
        self.until = until.astimezone(UTC)
        self.history_days = history_days
        self.orders_per_buyer = orders_per_buyer
        self.catalogue: Catalogue = build_catalogue()

    @property
    def products(self) -> pa.Table:
        return self.catalogue.products

    def chunk_count(self) -> int:
        return -(-self.customers // CHUNK_PEOPLE)

    def chunk(self, index: int) -> Chunk:
        first = index * CHUNK_PEOPLE
        n = min(CHUNK_PEOPLE, self.customers - first)
        if n <= 0:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        people = generate_people(rng, first + 1, n, self.until, self.history_days)
        orders, items = generate_orders(rng, people, self.catalogue, self.until, self.orders_per_buyer)
        events = generate_events(rng, people, self.catalogue.products.column("sku"), self.until)
        return Chunk(index, people.people, people.identities, orders, items, events)

    def chunks(self) -> Iterator[Chunk]:
        for index in range(self.chunk_count()):
            yield self.chunk(index)
