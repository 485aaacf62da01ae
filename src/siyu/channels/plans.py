"""A fast path for the templates most messages use: text with ``{{ profile.x }}``-style values,
optionally ``| default('…')``. Such a template is compiled once into a plan — literal pieces and
lookups — that renders a person with a few dict reads and one join, about ten times faster than
Jinja2's full rendering, with the same result and the same error for a missing value (checked
against Jinja2 in the tests). Anything else (loops, conditions, other filters, HTML) has no plan
and renders through the sandbox as before."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes

ROOTS = frozenset({"profile", "event", "order", "campaign", "brand"})
NAMES = frozenset({"link", "unsubscribe_url"})
MISSING = object()


class ValueMissingError(Exception):
    """A value the template names is missing (Jinja2's UndefinedError, word for word)."""


@dataclass(frozen=True)
class Lookup:
    root: str
    key: str | None  # None: the root itself (link, unsubscribe_url)
    default: str | None = None
    if_falsy: bool = False  # default(…, true): also for empty values


Piece = str | Lookup


def _lookup(node: nodes.Node) -> Lookup | None:
    default, if_falsy = None, False
    if isinstance(node, nodes.Filter):
        if node.name != "default" or node.kwargs or node.dyn_args or node.dyn_kwargs or node.node is None:
            return None
        args = node.args
        if not 1 <= len(args) <= 2 or not all(isinstance(a, nodes.Const) for a in args):
            return None
        first = args[0]
        if not isinstance(first, nodes.Const) or not isinstance(first.value, str):
            return None
        default = first.value
        if len(args) == 2:
            second = args[1]
            if not isinstance(second, nodes.Const) or not isinstance(second.value, bool):
                return None
            if_falsy = second.value
        node = node.node
    if isinstance(node, nodes.Name) and node.name in NAMES:
        return Lookup(node.name, None, default, if_falsy)
    if (
        isinstance(node, nodes.Getattr)
        and isinstance(node.node, nodes.Name)
        and node.node.name in ROOTS
        # Jinja2 reads an attribute of the dict before its item: keys such as "items" differ.
        and not hasattr(dict, node.attr)
    ):
        return Lookup(node.node.name, node.attr, default, if_falsy)
    return None


Compiled = Callable[[Mapping[str, Any]], str | None]


def plan_of(tree: nodes.Template) -> tuple[Piece, ...] | None:
    """The plan of a parsed template, or None when it is not one of the simple kind."""
    pieces: list[Piece] = []
    for statement in tree.body:
        if not isinstance(statement, nodes.Output):
            return None
        for node in statement.nodes:
            if isinstance(node, nodes.TemplateData):
                pieces.append(node.data)
                continue
            found = _lookup(node)
            if found is None:
                return None
            pieces.append(found)
    return tuple(pieces)


def render_plan(plan: tuple[Piece, ...], context: Mapping[str, Any]) -> str:
    out = []
    for piece in plan:
        if isinstance(piece, str):
            out.append(piece)
            continue
        value: Any = context.get(piece.root, MISSING)
        missing = f"'{piece.root}' is undefined"
        if value is not MISSING and piece.key is not None:
            missing = f"'dict object' has no attribute '{piece.key}'"
            try:
                value = value[piece.key] if isinstance(value, dict) else MISSING
            except KeyError:
                value = MISSING
        if value is MISSING or (piece.if_falsy and not value):
            if piece.default is None:
                raise ValueMissingError(missing)
            value = piece.default
        out.append(value if isinstance(value, str) else str(value))
    return "".join(out)


def compile_plan(plan: tuple[Piece, ...]) -> Compiled:
    """The plan as one Python function — what renders a million people in a second. It returns
    None wherever the plan would fail or a value is not where it usually is (a root that is not
    a dict): ``render_plan`` then gives the result, or the error, word for word."""
    lines = ["def rendered(context):"]
    roots: dict[str, str] = {}
    parts: list[str] = []
    for n, piece in enumerate(plan):
        if isinstance(piece, str):
            parts.append(repr(piece))
            continue
        if piece.root not in roots:
            roots[piece.root] = name = f"r{len(roots)}"
            lines.append(f"    {name} = context.get({piece.root!r}, MISSING)")
            if piece.key is not None:
                lines.append(f"    if not isinstance({name}, dict): return None")
        value = f"v{n}"
        source = roots[piece.root]
        lines.append(
            f"    {value} = {source}.get({piece.key!r}, MISSING)"
            if piece.key is not None
            else f"    {value} = {source}"
        )
        missing = f"{value} is MISSING" + (f" or not {value}" if piece.if_falsy else "")
        lines.append(
            f"    if {missing}: " + ("return None" if piece.default is None else f"{value} = {piece.default!r}")
        )
        parts.append(f"({value} if isinstance({value}, str) else str({value}))")
    lines.append(f"    return ''.join(({', '.join(parts)},))" if parts else "    return ''")
    namespace: dict[str, Any] = {"MISSING": MISSING}
    exec("\n".join(lines), namespace)  # noqa: S102 — the source is built above from reprs only
    compiled: Compiled = namespace["rendered"]
    return compiled
