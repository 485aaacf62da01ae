"""Working with a million rows in memory at once."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Build large structures without Python's cycle collector rescanning them as they grow.

    A send to a million people makes millions of rows, dicts and strings, none of them in a
    cycle; every so many allocations the collector would walk all of them again, a third of the
    time spent. Reference counting still frees everything as usual; any cycle made meanwhile
    waits for the next collection after the block.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
