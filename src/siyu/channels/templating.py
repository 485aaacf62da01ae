"""Message templates as Jinja2 text, rendered in a sandbox: a template can read the person's
traits and tags, the event or order that triggered it, and the campaign — and nothing else (no
attribute of Python objects, no I/O). Checked on save: a variable that is not one of those, or a
trait the workspace does not have, is refused with its name.

SMS bodies may also name the provider template's variables as ``${name}`` (Aliyun) or ``{1}``
(Tencent); they are filled from the template's rendered ``fields``."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from siyu.channels.errors import TemplateInvalidError
from siyu.channels.plans import Compiled, Piece, ValueMissingError, compile_plan, plan_of, render_plan

# What a template may read.
VARIABLES = ("profile", "tags", "event", "order", "campaign", "link", "unsubscribe_url", "brand")
# Keys of ``profile`` besides the person's traits.
PROFILE_KEYS = frozenset({"id", "display_name"})
_PROVIDER_VARIABLE = re.compile(r"\$\{(\w+)\}|\{(\d+)\}")


def yuan(fen: Any) -> str:
    """Fen as the yuan amount people read: 3980 → 39.80."""
    try:
        value = int(fen)
    except (TypeError, ValueError):
        return str(fen)
    sign = "-" if value < 0 else ""
    return f"{sign}{abs(value) // 100}.{abs(value) % 100:02d}"


def local_date(value: Any, fmt: str = "%Y年%m月%d日", tz: str = "Asia/Shanghai") -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return str(value.astimezone(ZoneInfo(tz)).strftime(fmt))
    return str(value)


@lru_cache(maxsize=2)
def environment(html: bool = False) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=html, keep_trailing_newline=True)
    env.filters["yuan"] = yuan
    env.filters["date"] = local_date
    return env


@dataclass(frozen=True)
class Problem:
    where: str  # body, subject, fields.thing2, variants[0].body…
    message: str


def _parse(source: str, where: str, html: bool, problems: list[Problem]) -> nodes.Template | None:
    try:
        return environment(html).parse(source)
    except TemplateSyntaxError as exc:
        problems.append(Problem(where, f"line {exc.lineno}: {exc.message}"))
        return None


def _trait_names(tree: nodes.Template) -> set[str]:
    """``profile.x`` and ``profile["x"]`` anywhere in the template."""
    names = set()
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "profile":
            names.add(node.attr)
    for item in tree.find_all(nodes.Getitem):
        key = item.arg
        if isinstance(item.node, nodes.Name) and item.node.name == "profile" and isinstance(key, nodes.Const):
            names.add(str(key.value))
    return names


def check_source(source: str, where: str, known_traits: Collection[str], *, html: bool = False) -> list[Problem]:
    """Why ``source`` cannot be a template part (empty when it can)."""
    problems: list[Problem] = []
    tree = _parse(source, where, html, problems)
    if tree is None:
        return problems
    for name in sorted(meta.find_undeclared_variables(tree) - set(VARIABLES)):
        problems.append(Problem(where, f"unknown variable {name!r}: use one of {', '.join(VARIABLES)}"))
    for trait in sorted(_trait_names(tree) - PROFILE_KEYS - set(known_traits)):
        problems.append(Problem(where, f"unknown trait profile.{trait}: no profile has it"))
    return problems


def provider_variables(text: str) -> list[str]:
    return [m.group(1) or m.group(2) for m in _PROVIDER_VARIABLE.finditer(text)]


@lru_cache(maxsize=512)
def _compiled(source: str, html: bool) -> tuple[Template, tuple[Piece, ...] | None, Compiled | None]:
    """Compiling costs a hundred times a rendering: each template text is compiled once, with
    its fast plan when it has one (plain text only: HTML escapes)."""
    env = environment(html)
    plan = None if html else plan_of(env.parse(source))
    return env.from_string(source), plan, None if plan is None else compile_plan(plan)


def text_plan(source: str) -> tuple[Piece, ...] | None:
    """The plan of a plain-text template, when it has one."""
    return _compiled(source, False)[1]


def render(source: str, context: Mapping[str, Any], *, html: bool = False) -> str:
    """Render in the sandbox; a missing value or a forbidden access raises TemplateInvalidError."""
    template, plan, fast = _compiled(source, html)
    if fast is not None:
        rendered = fast(context)
        if rendered is not None:
            return rendered
    if plan is not None:
        try:
            return render_plan(plan, context)
        except ValueMissingError as exc:
            raise TemplateInvalidError(f"the template cannot be rendered: {exc}") from exc
    try:
        return template.render(**context)
    except (UndefinedError, SecurityError, TemplateSyntaxError) as exc:
        raise TemplateInvalidError(f"the template cannot be rendered: {exc}") from exc


def fill_provider_variables(text: str, fields: Mapping[str, str]) -> str:
    """``${name}`` and ``{1}`` in an SMS body replaced by the rendered fields."""
    return _PROVIDER_VARIABLE.sub(lambda m: str(fields.get(m.group(1) or m.group(2), m.group(0))), text)
