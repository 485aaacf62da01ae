"""Stable random buckets: a person's bucket for a seed is a number from 0 to 9999 taken from the
MD5 of ``seed:profile_id`` (its first eight bytes, read little-endian, modulo 10 000).

The batch engine works the buckets out in bulk in DuckDB (``md5_number_upper`` is the same
number); ``bucket_of`` works out one, and the two are tested equal. A person keeps their bucket
for as long as the seed stays the same, which is what holdouts and random splits need.
"""

from __future__ import annotations

import hashlib

from siyu.rules.nodes import BUCKETS, Bucket, Node, walk


def bucket_of(seed: str, profile_id: str) -> int:
    digest = hashlib.md5(f"{seed}:{profile_id}".encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "little") % BUCKETS


def bucket_sql(seed_column: str, id_column: str) -> str:
    """The same number as a DuckDB expression over two columns."""
    return f"CAST(md5_number_upper({seed_column} || ':' || {id_column}) % {BUCKETS} AS INTEGER)"


def seeds_used(node: Node) -> set[str]:
    """The seeds a rule draws buckets for."""
    return {n.seed for _, n in walk(node) if isinstance(n, Bucket)}
