"""Stream rows out of CSV (UTF-8, UTF-8 with BOM or GBK; comma or tab), XLSX, JSONL and Parquet,
in bounded memory, each with its 1-based row number (the header is row 1 in tabular files).
Header names are cleaned of BOMs, tabs and the trailing spaces marketplace exports carry."""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from siyu.core.errors import ValidationFailedError

Row = tuple[int, dict[str, Any]]
FORMATS = ("csv", "xlsx", "jsonl", "parquet")


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    fmt = {"txt": "csv", "tsv": "csv", "json": "jsonl", "ndjson": "jsonl", "xls": "xlsx"}.get(suffix, suffix)
    if fmt not in FORMATS:
        raise ValidationFailedError(f"cannot read .{suffix} files; use CSV, XLSX, JSONL or Parquet")
    return fmt


def clean_header(name: object) -> str:
    return str(name or "").replace("\ufeff", "").replace("\t", "").strip()


def _encoding(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(65536)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start > len(head) - 4:  # a character cut at the sample's end
            return "utf-8"
        return "gb18030"  # a superset of GBK, as Taobao and JD exports use


def read_csv(path: Path) -> Iterator[Row]:
    with path.open("r", encoding=_encoding(path), newline="") as f:
        sample = f.read(8192)
        f.seek(0)
        delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
        reader = csv.reader(f, delimiter=delimiter)
        header = [clean_header(h) for h in next(reader, [])]
        for number, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            yield number, dict(zip(header, values, strict=False))


def read_xlsx(path: Path) -> Iterator[Row]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        rows = book.worksheets[0].iter_rows(values_only=True)
        header = [clean_header(h) for h in next(rows, ())]
        for number, values in enumerate(rows, start=2):
            if all(v is None or str(v).strip() == "" for v in values):
                continue
            yield number, {h: ("" if v is None else v) for h, v in zip(header, values, strict=False)}
    finally:
        book.close()


def read_jsonl(path: Path) -> Iterator[Row]:
    with path.open("r", encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, {"__error__": f"not valid JSON: {exc.msg}"}
                continue
            yield number, value if isinstance(value, dict) else {"__error__": "each line must be a JSON object"}


def read_parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    number = 1
    for batch in pq.ParquetFile(path).iter_batches(batch_size=5000):
        for row in batch.to_pylist():
            number += 1
            yield number, {clean_header(k): v for k, v in row.items()}


def iter_rows(path: Path, fmt: str | None = None) -> Iterator[Row]:
    fmt = fmt or detect_format(path)
    readers = {"csv": read_csv, "xlsx": read_xlsx, "jsonl": read_jsonl, "parquet": read_parquet}
    yield from readers[fmt](path)


def text(value: Any) -> str:
    """A cell as text, with Excel's guards removed (done by clean_cell downstream too)."""
    return "" if value is None else str(value)
