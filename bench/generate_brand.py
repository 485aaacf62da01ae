"""Throughput of the synthetic brand generator, streaming to Parquet.

    python bench/generate_brand.py [--customers 1000000] [--orders-per-buyer 3] [--out DIR]

Prints rows written per table, wall time, rows per second and peak memory (RSS).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from siyu.demo.generator import SyntheticBrand
from siyu.demo.writer import write_brand


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders-per-buyer", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp())
    brand = SyntheticBrand(seed=args.seed, customers=args.customers, orders_per_buyer=args.orders_per_buyer)
    started = time.perf_counter()
    counts = write_brand(brand, out)
    seconds = time.perf_counter() - started
    total = sum(counts.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.customers:,} customers -> {counts}")
    print(
        f"{total:,} rows in {seconds:.1f} s = {total / seconds:,.0f} rows/s; "
        f"orders {counts['orders'] / seconds:,.0f}/s; peak RSS {peak_mb:,.0f} MB; files in {out}"
    )


if __name__ == "__main__":
    main()
