"""A template rendered for everyone in a send at once: value by value instead of person by
person. Each value a plan names (see :mod:`siyu.channels.plans`) — ``{{ profile.city }}``,
``{{ event.sku | default('') }}`` — is read for all the people in one pass, then each person's
text is joined from the pieces. No context is built per person and no template is called per
person, which is what made rendering the larger part of preparing a send.

The result is what rendering each person's own context gives (tested side by side). Where a
template has no plan (loops, conditions, tags, HTML), nothing is rendered here; where one
person's values are not where they usually are (a value missing with no default, an event that
is not a dict, a context that brings more than its event or order), that person is left to the
per-person rendering, which gives the result or the error word for word."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from siyu.channels.contracts import ChannelKind
from siyu.channels.plans import MISSING, Lookup
from siyu.channels.templates import TemplateDraft, template_parts
from siyu.channels.templating import fill_provider_variables, text_plan

# What a recipient's context may bring for its message to be rendered here.
PER_PERSON_ROOTS = frozenset({"event", "order"})
_ODD = object()  # a value not where it usually is: the person is rendered on their own


@dataclass
class Messages:
    """The people's messages, column by column, as the per-person rendering makes them before
    the channel's finishing (the signature, extras). A text of None: that person is rendered on
    their own."""

    texts: list[str | None]
    subjects: list[str]
    fields: list[dict[str, str]]
    links: list[str]


@dataclass(frozen=True)
class People:
    """The people of a send, with what their messages may read."""

    ids: Sequence[str]
    names: Sequence[str]  # display names, "" for none
    traits: Sequence[Mapping[str, Any]]
    # Each one's triggering event or order ({} for none); None when no one has one.
    contexts: Sequence[Mapping[str, Any]] | None = None


Shorten = Callable[[str, str], str]  # (link, the person) → the link they get


def renders_in_bulk(draft: TemplateDraft) -> bool:
    """Whether every part of the template has a plan (plain text of values only)."""
    if draft.channel is ChannelKind.EMAIL:
        return False
    sources = [draft.link] + [
        s for _w, subject, body, fields in template_parts(draft) for s in (subject, body, *fields.values())
    ]
    return all(text_plan(s) is not None for s in sources)


def render_all(
    draft: TemplateDraft,
    people: People,
    segments: Mapping[str, Collection[str]],
    base: Mapping[str, Any],
    shorten: Shorten | None,
) -> Messages:
    """Each person's message. ``base`` is the context every person shares (campaign, brand…);
    ``segments`` the variants' segments each person is in; ``shorten`` makes each person's
    link."""
    n = len(people.ids)
    out = Messages([None] * n, [""] * n, [{}] * n, [""] * n)
    contexts = people.contexts
    usual: Sequence[int] = (
        range(n) if contexts is None else [i for i in range(n) if contexts[i].keys() <= PER_PERSON_ROOTS]
    )
    links = _links(draft, people, usual, base, shorten)
    parts = template_parts(draft)
    live = [i for i in usual if links[i] is not None] if draft.link else usual
    groups: dict[int, Sequence[int]] = {0: live}
    if draft.variants:
        groups = {}
        for i in live:
            held = segments.get(people.ids[i], ())
            part = next((k + 1 for k, v in enumerate(draft.variants) if v.segment_id in held), 0) if held else 0
            groups.setdefault(part, []).append(i)  # type: ignore[attr-defined]
    sms = draft.channel is ChannelKind.SMS
    for part, group in groups.items():
        _where, subject, body, fields = parts[part]
        texts = _column(body, people, group, base, links, strip=sms and not fields)
        subjects = _column(subject, people, group, base, links, strip=True) if subject else None
        named = [(k, _column(v, people, group, base, links, strip=True)) for k, v in fields.items()]
        if len(group) == n and subjects is None and not named:  # everyone, in order: as they are
            out.texts, out.links = texts, links  # type: ignore[assignment]
            continue
        for row, i in enumerate(group):
            text = texts[row]
            if subjects is not None:
                title = subjects[row]
                if title is None:
                    continue
                out.subjects[i] = title
            if named:
                values = {k: column[row] for k, column in named}
                if None in values.values():
                    continue
                out.fields[i] = values  # type: ignore[assignment]
                if sms and text is not None:
                    text = fill_provider_variables(text, values).strip()  # type: ignore[arg-type]
            out.texts[i] = text
            out.links[i] = links[i]  # type: ignore[assignment]
    return out


def _links(
    draft: TemplateDraft, people: People, usual: Sequence[int], base: Mapping[str, Any], shorten: Shorten | None
) -> list[str | None]:
    """Each person's link, as their message carries it (None where it cannot be made here)."""
    if not draft.link:
        return [""] * len(people.ids)
    links: list[str | None] = [None] * len(people.ids)
    empty: list[str | None] = [""] * len(people.ids)
    made = _column(draft.link, people, usual, base, empty, strip=True)
    for row, i in enumerate(usual):
        link = made[row]
        if link is not None:
            links[i] = shorten(link, people.ids[i]) if shorten else link
    return links


def _column(
    source: str,
    people: People,
    group: Sequence[int],
    base: Mapping[str, Any],
    links: Sequence[str | None],
    *,
    strip: bool = False,
) -> list[str | None]:
    """``source`` rendered for each person of ``group`` (None where it cannot be here)."""
    plan = text_plan(source)
    assert plan is not None
    if not group:
        return []
    columns: list[Any] = [
        repeat(p) if isinstance(p, str) else _strings(p, _values(p, people, group, base, links)) for p in plan
    ]
    texts: list[str | None]
    if all(isinstance(c, repeat) for c in columns):
        texts = ["".join(p for p in plan if isinstance(p, str))] * len(group)
    else:
        texts = ["".join(t) if None not in t else None for t in zip(*columns, strict=False)]  # literals repeat
    return [t.strip() if t is not None else None for t in texts] if strip else texts


def _values(
    piece: Lookup, people: People, group: Sequence[int], base: Mapping[str, Any], links: Sequence[str | None]
) -> list[Any]:
    root, key = piece.root, piece.key
    if root == "profile":
        if key == "id":
            return [people.ids[i] for i in group]
        if key == "display_name":
            return [people.names[i] for i in group]
        traits = people.traits
        return [traits[i].get(key, MISSING) for i in group]  # type: ignore[arg-type]
    if root == "link":
        return [links[i] for i in group]
    if root in PER_PERSON_ROOTS:
        contexts, shared = people.contexts, base.get(root, MISSING)
        if contexts is None:
            return [_item(shared, key)] * len(group)
        return [_item(contexts[i].get(root, shared), key) for i in group]
    return [_item(base.get(root, MISSING), key)] * len(group)


def _item(value: Any, key: str | None) -> Any:
    if key is None or value is MISSING:
        return value
    return value.get(key, MISSING) if isinstance(value, dict) else _ODD


def _strings(piece: Lookup, values: list[Any]) -> list[str | None]:
    """The values as the template prints them, or None where the person's own rendering must
    decide (a missing value without a default fails there, with its message)."""
    default, falsy = piece.default, piece.if_falsy
    if default is None and not falsy:
        return [v if isinstance(v, str) else None if v is MISSING or v is _ODD else str(v) for v in values]
    out: list[str | None] = []
    for v in values:
        if v is _ODD:
            out.append(None)
        elif v is MISSING or (falsy and not v):
            out.append(default)
        else:
            out.append(v if isinstance(v, str) else str(v))
    return out
