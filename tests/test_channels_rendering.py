"""Rendering a template for everyone at once gives each person what rendering their own context
gives; whoever it cannot render is left to that, and only they are."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest

from siyu.channels.contracts import ChannelKind, Content, MessageKind
from siyu.channels.errors import TemplateInvalidError
from siyu.channels.rendering import People, render_all, renders_in_bulk
from siyu.channels.templates import Finish, TemplateDraft, Variant, render_for
from siyu.channels.templating import render

SMS, PUSH, WECOM = ChannelKind.SMS, ChannelKind.APP_PUSH, ChannelKind.WECOM
VALUES: list[Any] = ["上海", "", "  空格  ", 0, 12, 3.5, True, False, None, {"a": 1}, [1, 2], "x{{ y }}"]
DRAFTS = [
    TemplateDraft("plain", SMS, MessageKind.MARKETING, body="{{ profile.name }}，积分{{ profile.points }} 拒收请回复R"),
    TemplateDraft(
        "defaults",
        SMS,
        MessageKind.MARKETING,
        body=" {{ profile.city | default('本地') }}·{{ profile.name | default('会员', true) }} {{ profile.id }} ",
    ),
    TemplateDraft("names", WECOM, MessageKind.MARKETING, body="{{ profile.display_name }}您好{{ campaign.name }}"),
    TemplateDraft(
        "event",
        PUSH,
        MessageKind.TRANSACTIONAL,
        subject=" 订单{{ order.no | default('') }} ",
        body="{{ event.sku | default('-') }}{{ event.qty | default('1', true) }}",
    ),
    TemplateDraft(
        "link",
        SMS,
        MessageKind.MARKETING,
        body="详情 {{ link }} {{ unsubscribe_url | default('无', true) }} 拒收请回复R",
        link=" https://b.example/?u={{ profile.id }}&c={{ profile.city | default('') }} ",
    ),
    TemplateDraft(
        "fields",
        SMS,
        MessageKind.MARKETING,
        body="${name}的积分{2}到期 拒收请回复R",
        fields={"name": " {{ profile.name | default('会员') }}", "2": "{{ profile.points }}"},
    ),
    TemplateDraft(
        "variants",
        SMS,
        MessageKind.MARKETING,
        body="{{ profile.name | default('') }}基础 拒收请回复R",
        variants=(
            Variant("seg_a", body="{{ profile.city }}甲 拒收请回复R"),
            Variant("seg_b", body="乙{{ campaign.code | default('') }} 拒收请回复R"),
        ),
    ),
]
CAMPAIGN = {"name": "双11", "code": "D11"}


def base() -> dict[str, Any]:
    return {
        "profile": {},
        "tags": [],
        "event": {},
        "order": {},
        "campaign": dict(CAMPAIGN),
        "brand": {},
        "link": "",
        "unsubscribe_url": "",
    }


def people(seed: int, n: int, contexts: bool) -> tuple[People, dict[str, set[str]]]:
    rng = random.Random(seed)
    ids = [f"pf_{seed}_{i}" for i in range(n)]
    traits = [
        {k: rng.choice(VALUES) for k in ("name", "city", "points", "items", "no") if rng.random() < 0.8}
        for _ in range(n)
    ]
    names = [rng.choice(["", "王小明", "Amy"]) for _ in range(n)]
    made: list[Mapping[str, Any]] | None = None
    if contexts:
        choices: list[Mapping[str, Any]] = [
            {},
            {"event": {"sku": "SKU1"}},
            {"event": {"sku": 7}, "order": {"no": "A1"}},
            {"event": {}},
            {"event": "not a dict"},
            {"order": {"no": None}},
            {"profile": {"name": "换人"}},
        ]
        made = [rng.choice(choices) for _ in range(n)]
    segments = {p: set(rng.sample(["seg_a", "seg_b", "seg_c"], rng.randint(0, 2))) for p in ids}
    return People(ids, names, traits, made), segments


def one_by_one(draft: TemplateDraft, group: People, i: int, segments: set[str]) -> Content:
    """The per-person rendering, as a send makes it."""
    p = group.ids[i]
    context = base()
    context["profile"] = {**group.traits[i], "id": p, "display_name": group.names[i]}
    if group.contexts:
        context.update(group.contexts[i])
    finish = Finish()
    if draft.link:
        context["link"] = link = shorten(render(draft.link, context).strip(), p)
        finish = Finish(link=link)
    return render_for(draft, context, segments, finish)


def shorten(link: str, p: str) -> str:
    return f"https://s.example/{len(link)}/{p}"


@pytest.mark.parametrize("contexts", [False, True])
@pytest.mark.parametrize("draft", DRAFTS, ids=[d.name for d in DRAFTS])
def test_everyone_at_once_is_each_one_on_their_own(draft: TemplateDraft, contexts: bool) -> None:
    assert renders_in_bulk(draft)
    group, segments = people(len(draft.name), 400, contexts)
    made = render_all(draft, group, segments, base(), shorten)
    at_once = 0
    for i, p in enumerate(group.ids):
        try:
            alone: Content | str = one_by_one(draft, group, i, segments[p])
        except TemplateInvalidError as exc:
            alone = exc.message
        text = made.texts[i]
        if text is None:  # left to the person's own rendering: it fails, or it reads what is odd
            odd = bool(group.contexts) and (
                group.contexts[i].keys() - {"event", "order"}
                or not isinstance(group.contexts[i].get("event", {}), dict)
            )
            assert isinstance(alone, str) or odd, (p, alone)
            continue
        at_once += 1
        assert isinstance(alone, Content), (p, alone, text)
        assert (text, made.subjects[i], made.fields[i], made.links[i]) == (
            alone.text,
            alone.subject,
            alone.fields,
            alone.link,
        ), p
    assert at_once > 50  # most people are rendered at once


def test_templates_without_a_plan_are_rendered_person_by_person() -> None:
    for draft in [
        TemplateDraft("if", SMS, MessageKind.MARKETING, body="{% if profile.vip %}贵宾{% endif %} 拒收请回复R"),
        TemplateDraft("tags", SMS, MessageKind.MARKETING, body="{{ tags | join('、') }} 拒收请回复R"),
        TemplateDraft("filter", SMS, MessageKind.MARKETING, body="{{ profile.spent | yuan }}元 拒收请回复R"),
        TemplateDraft(
            "email", ChannelKind.EMAIL, MessageKind.MARKETING, subject="hi", body="<p>{{ profile.name }}</p>"
        ),
        TemplateDraft("link", SMS, MessageKind.MARKETING, body="{{ link }} 拒收请回复R", link="{{ tags[0] }}"),
    ]:
        assert not renders_in_bulk(draft), draft.name
