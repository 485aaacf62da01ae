"""Stream a synthetic brand to Parquet or CSV files, one file per table, chunk by chunk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from siyu.demo.generator import SyntheticBrand

TABLES = ("people", "identities", "orders", "order_items", "events")
Format = Literal["parquet", "csv"]


class _Sink:
    def __init__(self, path: Path, fmt: Format) -> None:
        self.path, self.fmt = path, fmt
        self.writer: Any = None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            if self.fmt == "parquet":
                self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
            else:
                self.writer = pacsv.CSVWriter(self.path, table.schema)
        self.writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def write_brand(
    brand: SyntheticBrand,
    out_dir: Path,
    fmt: Format = "parquet",
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Write every table to ``out_dir``; returns row counts. Memory stays at one chunk."""
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "parquet" if fmt == "parquet" else "csv"
    sinks = {name: _Sink(out_dir / f"{name}.{suffix}", fmt) for name in TABLES}
    products = _Sink(out_dir / f"products.{suffix}", fmt)
    try:
        products.write(brand.products)
        for chunk in brand.chunks():
            sinks["people"].write(chunk.people)
            sinks["identities"].write(chunk.identities)
            sinks["orders"].write(chunk.orders)
            sinks["order_items"].write(chunk.items)
            sinks["events"].write(chunk.events)
            if progress:
                progress(chunk.people.num_rows)
    finally:
        for sink in [*sinks.values(), products]:
            sink.close()
    return {"products": products.rows} | {name: s.rows for name, s in sinks.items()}
