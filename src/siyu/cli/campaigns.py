"""``siyu campaigns``: list, create (with a test then the winner, or a repeat), schedule (every
reason it cannot go is printed), approve, pause, resume, cancel, choose a test's winner, run now,
and the report. The CLI acts as the workspace's owner."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from siyu.accounts.contracts import Principal, Role
from siyu.analytics.facade import rule_catalog
from siyu.campaigns import facade
from siyu.campaigns.facade import CampaignDraft, CampaignPublic, VariantDraft
from siyu.campaigns.run import run_campaign
from siyu.channels.prepare import Links
from siyu.cli.analytics import _workspace
from siyu.core.errors import SiyuError
from siyu.core.settings import get_settings
from siyu.reports.campaigns import campaign_report
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

campaigns_app = typer.Typer(help="Campaigns: variants to a segment, approved, sent once each.", no_args_is_help=True)
console = Console(soft_wrap=True)
wide = Console(soft_wrap=True, width=200)
Workspace = Annotated[str, typer.Option(help="workspace slug")]
CampaignId = Annotated[str, typer.Argument(help="the campaign's id (cmp_…)")]


def _fail(exc: SiyuError) -> None:
    console.print(f"[red]{exc.code}[/red]: {exc.message}")
    if isinstance(exc.details, dict):
        for problem in exc.details.get("problems", []):
            console.print(f"  at {problem.get('where') or problem.get('path')}: {problem.get('message', '')}")
    raise typer.Exit(code=2)


def _variant(text: str) -> VariantDraft:
    """``A=tpl_…:50``, or ``A=tpl_wecom,tpl_sms:50`` with fallbacks: the variant's key, templates
    and share."""
    try:
        key, rest = text.split("=", 1)
        templates, share = rest.rsplit(":", 1)
        first, *fallbacks = [t.strip() for t in templates.split(",")]
        return VariantDraft(key.strip(), first, int(share), fallbacks=tuple(fallbacks))
    except ValueError:
        console.print(f"[red]a variant is KEY=TEMPLATE_ID[,FALLBACK…]:SHARE, e.g. A=tpl_…:50[/red] (got {text!r})")
        raise typer.Exit(code=2) from None


def _show(c: CampaignPublic) -> None:
    variants = " / ".join(f"{v['key']} {v['share']}%" for v in c.variants)
    more = f" · winner {c.winner}" if c.winner else ""
    more += f" · next {c.next_at.isoformat()}" if c.next_at else ""
    console.print(f"{c.id} {c.status} · {c.name} · {variants} · audience {c.audience} · handed over {c.prepared}{more}")


@campaigns_app.command("list")
def list_campaigns(workspace: Workspace, status: Annotated[str | None, typer.Option()] = None) -> None:
    db = Database(get_settings().database_url)
    try:
        with db.read(Scope.workspace(_workspace(db, workspace))) as s:
            page = facade.list_campaigns(s, status, None, 200)
    except SiyuError as exc:
        _fail(exc)
        return
    table = Table("name", "status", "variants", "audience", "handed over", "id")
    for c in page.items:
        table.add_row(
            c.name,
            c.status,
            " / ".join(f"{v['key']} {v['share']}%" for v in c.variants),
            str(c.audience),
            str(c.prepared),
            c.id,
        )
    wide.print(table)


@campaigns_app.command("create")
def create(
    workspace: Workspace,
    name: Annotated[str, typer.Argument()],
    segment: Annotated[str, typer.Option(help="the segment's id")],
    variant: Annotated[list[str], typer.Option(help="KEY=TEMPLATE_ID[,FALLBACK…]:SHARE, once per variant")],
    holdout: Annotated[str | None, typer.Option(help="a holdout's id")] = None,
    at: Annotated[
        datetime | None, typer.Option(help="when to send (with its time zone); as soon as scheduled if not given")
    ] = None,
    value: Annotated[list[str] | None, typer.Option(help="NAME=TEXT, read by templates as campaign.NAME")] = None,
    test: Annotated[
        str | None, typer.Option(help="PERCENT:METRIC:HOURS, e.g. 20:ctr:4 — test on a share, then send the winner")
    ] = None,
    every: Annotated[str | None, typer.Option(help="repeat every day or week")] = None,
    at_time: Annotated[str, typer.Option(help="with --every: the local time, HH:MM")] = "10:00",
    weekday: Annotated[list[int] | None, typer.Option(help="with --every week: 1 (Monday) to 7, once per day")] = None,
    until: Annotated[str | None, typer.Option(help="with --every: the last day, YYYY-MM-DD")] = None,
    new_only: Annotated[bool, typer.Option(help="with --every: leave out whoever an earlier time had")] = False,
) -> None:
    """A draft campaign; prints its id."""
    bad = [v for v in value or [] if "=" not in v or not v.split("=", 1)[0].strip()]
    if bad:
        console.print(f"[red]a value is NAME=TEXT[/red] (got {bad[0]!r})")
        raise typer.Exit(code=2)
    values = dict(v.split("=", 1) for v in value or [])
    tested: dict[str, object] = {}
    if test is not None:
        parts = test.split(":")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
            console.print(f"[red]a test is PERCENT:METRIC:HOURS, e.g. 20:ctr:4[/red] (got {test!r})")
            raise typer.Exit(code=2)
        tested = {"percent": int(parts[0]), "metric": parts[1], "hours": int(parts[2])}
    recurrence: dict[str, object] = {}
    if every is not None:
        recurrence = {"every": every, "at": at_time, "weekdays": weekday or [], "new_only": new_only}
        if until:
            recurrence["until"] = until
    draft = CampaignDraft(
        name, segment, tuple(_variant(v) for v in variant), holdout, at, values, test=tested, recurrence=recurrence
    )
    db = Database(get_settings().database_url)
    try:
        with db.transaction(Scope.workspace(_workspace(db, workspace))) as s:
            made = facade.save_campaign(s, draft, None)
    except SiyuError as exc:
        _fail(exc)
        return
    _show(made)


def _move(workspace: str, campaign_id: str, how: str) -> None:
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        workspace_id = _workspace(db, workspace)
        with db.transaction(Scope.workspace(workspace_id)) as s:
            if how == "schedule":
                done = facade.schedule(s, campaign_id, set(rule_catalog(s, settings.data_dir).traits))
            elif how == "approve":
                done = facade.approve(s, campaign_id, Principal(workspace_id=workspace_id, role=Role.OWNER))
            else:
                done = getattr(facade, how)(s, campaign_id)
    except SiyuError as exc:
        _fail(exc)
        return
    _show(done)


@campaigns_app.command("schedule")
def schedule(workspace: Workspace, campaign_id: CampaignId) -> None:
    """Check and schedule it (or hold it for approval above the threshold)."""
    _move(workspace, campaign_id, "schedule")


@campaigns_app.command("approve")
def approve(workspace: Workspace, campaign_id: CampaignId) -> None:
    _move(workspace, campaign_id, "approve")


@campaigns_app.command("pause")
def pause(workspace: Workspace, campaign_id: CampaignId) -> None:
    _move(workspace, campaign_id, "pause")


@campaigns_app.command("resume")
def resume(workspace: Workspace, campaign_id: CampaignId) -> None:
    _move(workspace, campaign_id, "resume")


@campaigns_app.command("cancel")
def cancel(workspace: Workspace, campaign_id: CampaignId) -> None:
    _move(workspace, campaign_id, "cancel")


@campaigns_app.command("winner")
def winner(
    workspace: Workspace,
    campaign_id: CampaignId,
    variant: Annotated[str | None, typer.Argument(help="the variant to send the rest")] = None,
    none: Annotated[bool, typer.Option("--none", help="send the rest nothing")] = False,
) -> None:
    """While a test waits: send the people kept back a variant, or (--none) nothing."""
    if (variant is None) == (not none):
        console.print("[red]name the variant to send the rest, or give --none[/red]")
        raise typer.Exit(code=2)
    db = Database(get_settings().database_url)
    try:
        with db.transaction(Scope.workspace(_workspace(db, workspace))) as s:
            done = facade.choose_winner(s, campaign_id, variant)
    except SiyuError as exc:
        _fail(exc)
        return
    _show(done)


@campaigns_app.command("run")
def run(workspace: Workspace, campaign_id: CampaignId) -> None:
    """Hand a scheduled campaign to the send ledger now, in this process (workers send it)."""
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        report = run_campaign(
            db, _workspace(db, workspace), campaign_id, Links(settings.public_url, settings.secret_key), 3600
        )
    except SiyuError as exc:
        _fail(exc)
        return
    console.print(json.dumps({"status": report.status, "prepared": report.prepared, "chunks": report.chunks}))


@campaigns_app.command("report")
def report(workspace: Workspace, campaign_id: CampaignId) -> None:
    """Each variant's funnel, and whether they differ in click-through."""
    db = Database(get_settings().database_url)
    try:
        with db.read(Scope.workspace(_workspace(db, workspace))) as s:
            r = campaign_report(s, campaign_id)
    except SiyuError as exc:
        _fail(exc)
        return
    table = Table("variant", "audience", "held out", "skipped", "sent", "delivered", "clicked", "delivery", "CTR")
    for f in [*r.variants, r.total]:
        table.add_row(
            f.key, *(str(n) for n in (f.audience, f.held_out, f.skipped, f.sent, f.delivered, f.clicked)),
            f"{f.delivery_rate:.1%}", f"{f.click_rate:.2%}",
        )  # fmt: skip
    wide.print(table)
    c = r.clicks
    console.print(
        f"chi-square {c.chi2:.2f} (p = {c.chi2_p_value:.3g}): {'significant' if c.significant else 'not significant'}"
    )
    for key, p in c.probability_best.items():
        console.print(f"P({key} best) = {p:.1%}")
