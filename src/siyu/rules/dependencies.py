"""Rules that ask about other rules' results — a tag's rule about other tags, a segment's about
other segments — are evaluated after those, and may never ask, through any chain, about
themselves. Both questions over a graph of ``id → the ids its rule asks about``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def depends_on_itself(item_id: str, asked: Iterable[str], graph: Mapping[str, set[str]]) -> bool:
    """Whether a rule of ``item_id`` asking about ``asked`` would reach ``item_id`` again through
    the rules of ``graph`` (which holds every other item's)."""
    seen: set[str] = set()
    todo = list(asked)
    while todo:
        current = todo.pop()
        if current == item_id:
            return True
        if current not in seen:
            seen.add(current)
            todo += graph.get(current, set())
    return False


def evaluation_order(graph: Mapping[str, set[str]]) -> list[str]:
    """Every item of ``graph`` (in its order) after the items its rule asks about; an item asked
    about but not in ``graph`` (a manual tag, a static segment) is left out, as its people are
    there already."""
    ordered: list[str] = []
    placed: set[str] = set()

    def place(item: str, path: tuple[str, ...]) -> None:
        if item in placed or item in path:
            return
        for needed in sorted(graph[item]):
            if needed in graph:
                place(needed, (*path, item))
        placed.add(item)
        ordered.append(item)

    for item in graph:
        place(item, ())
    return ordered
