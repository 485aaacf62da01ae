"""Vectorised building blocks: random strings and string concatenation as Arrow arrays.

Generating tens of millions of identifiers row by row in Python would dominate the run; these
build whole columns with numpy and Arrow compute instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ALNUM = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8)
WECHAT = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8)
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)


def random_strings(rng: np.random.Generator, n: int, length: int, alphabet: np.ndarray) -> pa.Array:
    codes = alphabet[rng.integers(0, len(alphabet), size=(n, length))]
    fixed = np.ascontiguousarray(codes).view(f"S{length}").ravel()
    return pc.cast(pa.array(fixed, type=pa.binary(length)), pa.string())


def digits(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(pc.cast(pa.array(values, type=pa.int64()), pa.string()), width, "0")


def concat(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def choose(words: Sequence[str], index: np.ndarray) -> pa.Array:
    return pc.take(pa.array(list(words), type=pa.string()), pa.array(index))


def mask(values: pa.Array, mask_flag: np.ndarray) -> pa.Array:
    """Null where ``mask_flag`` is False."""
    return pc.if_else(pa.array(mask_flag), values, pa.nulls(len(values), pa.string()))


def weighted_ranks(rng: np.random.Generator, n: int, size: int, decay: float = 0.03) -> np.ndarray:
    """Indices 0..size-1 with frequencies falling off by rank (surnames, products)."""
    weights = np.exp(-decay * np.arange(size))
    return rng.choice(size, size=n, p=weights / weights.sum())
