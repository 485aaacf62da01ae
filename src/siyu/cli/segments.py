"""``siyu segments``: the segment library, a rule's count before saving it, refreshing, and the
members out as a spreadsheet or an ad-platform audience file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from siyu.accounts.facade import get_workspace
from siyu.analytics.facade import preview_rule, rule_catalog
from siyu.cli.analytics import _workspace, run_now
from siyu.cli.tags import _fail
from siyu.core.errors import SiyuError
from siyu.core.settings import get_settings
from siyu.segments import facade
from siyu.segments.contracts import SegmentDraft
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

segments_app = typer.Typer(help="Segments: rules over people, their members, exports.", no_args_is_help=True)
console = Console(soft_wrap=True)
# Tables as wide as they need: names are Chinese, and ids go whole to other commands.
wide = Console(soft_wrap=True, width=200)
Workspace = Annotated[str, typer.Option(help="workspace slug")]


def _rule(path: Path) -> dict[str, Any]:
    try:
        parsed = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        console.print(f"[red]cannot read the rule[/red]: {exc}")
        raise typer.Exit(code=2) from None
    if not isinstance(parsed, dict):
        console.print("[red]the rule is a JSON object[/red]")
        raise typer.Exit(code=2)
    return parsed


@segments_app.command("list")
def list_segments(workspace: Workspace) -> None:
    """Every segment with its kind, size and when it was refreshed."""
    db = Database(get_settings().database_url)
    try:
        with db.read(Scope.workspace(_workspace(db, workspace))) as s:
            found = facade.list_segments(s)
    except SiyuError as exc:
        _fail(exc)
        return
    table = Table("name", "kind", "people", "refreshed", "id")
    for g in found:
        refreshed = g.refreshed_at.strftime("%Y-%m-%d %H:%M") if g.refreshed_at else "—"
        table.add_row(g.name, g.kind, str(g.people), refreshed, g.id)
    wide.print(table)


@segments_app.command("preview")
def preview(workspace: Workspace, rule: Annotated[Path, typer.Argument(help="a JSON file holding the rule")]) -> None:
    """How many people a rule selects now, checked as on save."""
    settings = get_settings()
    db = Database(settings.database_url)
    parsed = _rule(rule)
    try:
        with db.read(Scope.workspace(_workspace(db, workspace))) as s:
            found = preview_rule(s, settings.data_dir, parsed)
    except SiyuError as exc:
        _fail(exc)
        return
    share = found.people / found.everyone if found.everyone else 0.0
    console.print(f"{found.people} of {found.everyone} people ({share:.1%}), counted in {found.ms} ms")


@segments_app.command("create")
def create(
    workspace: Workspace,
    name: Annotated[str, typer.Argument(help="the segment's name")],
    rule: Annotated[Path | None, typer.Option(help="a dynamic segment's rule: a JSON file")] = None,
    people: Annotated[Path | None, typer.Option(help="a static segment's people: a file of profile ids")] = None,
    description: Annotated[str, typer.Option()] = "",
) -> None:
    """Create a dynamic segment from a rule, or a static one from a list of profile ids."""
    if (rule is None) == (people is None):
        console.print("[red]validation_failed[/red]: give --rule (dynamic) or --people (static)")
        raise typer.Exit(code=2)
    settings = get_settings()
    db = Database(settings.database_url)
    ids = [line.strip() for line in people.read_text(encoding="utf-8").splitlines() if line.strip()] if people else None
    draft = SegmentDraft(
        name=name,
        kind="dynamic" if rule is not None else "static",
        description=description,
        rule=_rule(rule) if rule is not None else None,
    )
    try:
        with db.transaction(Scope.workspace(_workspace(db, workspace))) as s:
            made = facade.create_segment(s, draft, rule_catalog(s, settings.data_dir), None, ids)
    except SiyuError as exc:
        _fail(exc)
        return
    console.print(f"{made.id} ({made.kind}, {made.people} people now)")


@segments_app.command("refresh")
def refresh(workspace: Workspace) -> None:
    """Refresh every dynamic segment now, in this process, and print the run's step log."""
    run_now(workspace, "segments")


@segments_app.command("export")
def export(
    workspace: Workspace,
    segment_id: Annotated[str, typer.Argument()],
    out: Annotated[Path, typer.Argument(help="where to write: .csv or .xlsx")],
) -> None:
    """The members as a spreadsheet (unmasked: the command line is an operator's)."""
    fmt = out.suffix.lstrip(".").lower()
    db = Database(get_settings().database_url)
    try:
        with db.read(Scope.workspace(ws := _workspace(db, workspace))) as s:
            done = facade.members_file(s, segment_id, fmt, mask=False, timezone=get_workspace(s, ws).timezone)
    except SiyuError as exc:
        _fail(exc)
        return
    out.write_bytes(done.content)
    console.print(f"{done.rows} people written to {out}")


@segments_app.command("audience")
def audience(
    workspace: Workspace,
    segment_id: Annotated[str, typer.Argument()],
    out: Annotated[Path, typer.Argument(help="the zip to write")],
    platform: Annotated[str, typer.Option(help="tencent or oceanengine")] = "tencent",
    id_type: Annotated[str, typer.Option(help="HASH_MOBILE_PHONE, SHA256_MOBILE_PHONE, MOBILE_HASH_SHA256, …")] = (
        "HASH_MOBILE_PHONE"
    ),
    app_id: Annotated[str | None, typer.Option(help="for WX_OPENID: the app the openids belong to")] = None,
) -> None:
    """An ad-platform audience file of the members with audience-upload consent."""
    db = Database(get_settings().database_url)
    try:
        with db.read(Scope.workspace(_workspace(db, workspace))) as s:
            done = facade.audience_file(s, segment_id, platform, id_type, app_id)
    except SiyuError as exc:
        _fail(exc)
        return
    out.write_bytes(done.content)
    console.print(f"{done.members} members: {done.included} in the file ({done.ids} ids) → {out}")
    for reason, n in done.excluded.items():
        console.print(f"  left out, {reason}: {n}")


@segments_app.command("freeze")
def freeze(
    workspace: Workspace,
    segment_id: Annotated[str, typer.Argument()],
    name: Annotated[str, typer.Argument(help="the snapshot's name")],
) -> None:
    """A static snapshot of a segment's members now."""
    db = Database(get_settings().database_url)
    try:
        with db.transaction(Scope.workspace(_workspace(db, workspace))) as s:
            made = facade.freeze_segment(s, segment_id, name, None)
    except SiyuError as exc:
        _fail(exc)
        return
    console.print(f"{made.id} (static, {made.people} people)")


@segments_app.command("overlap")
def overlap(workspace: Workspace, a: Annotated[str, typer.Argument()], b: Annotated[str, typer.Argument()]) -> None:
    """How many people are in each of two segments, and in both."""
    db = Database(get_settings().database_url)
    try:
        with db.read(Scope.workspace(_workspace(db, workspace))) as s:
            in_a, in_b, both = facade.segment_overlap(s, a, b)
    except SiyuError as exc:
        _fail(exc)
        return
    console.print(f"A {in_a}, B {in_b}, both {both}")


@segments_app.command("holdouts")
def holdouts(
    workspace: Workspace,
    global_share: Annotated[
        float | None, typer.Option(help="set the global control group's share, in percent (0 turns it off)")
    ] = None,
    create: Annotated[str | None, typer.Option(help="create a holdout for one use with this name")] = None,
    share: Annotated[float, typer.Option(help="the new holdout's share, in percent")] = 10.0,
) -> None:
    """List the holdouts; set the global control group's share, or create one for a single use."""
    db = Database(get_settings().database_url)
    try:
        with db.transaction(Scope.workspace(_workspace(db, workspace))) as s:
            if global_share is not None:
                facade.set_global_share(s, round(global_share * 100), None)
            if create is not None:
                facade.create_holdout(s, create, round(share * 100), "", None)
            found = facade.list_holdouts(s)
    except SiyuError as exc:
        _fail(exc)
        return
    table = Table("name", "kind", "share", "id")
    for h in found:
        table.add_row(h.name, h.kind, f"{h.share_bp / 100:g}%", h.id)
    wide.print(table)
