"""``siyu tags``: the tag library, rule tags from a JSON file, and tagging the people of a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from siyu.analytics.facade import rule_catalog
from siyu.cli.analytics import _workspace
from siyu.core.errors import SiyuError
from siyu.core.settings import get_settings
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from siyu.tags import facade
from siyu.tags.contracts import TagDraft

tags_app = typer.Typer(help="Tags: the library, rule and computed tags, tagging people by file.", no_args_is_help=True)
console = Console(soft_wrap=True)
Workspace = Annotated[str, typer.Option(help="workspace slug")]


def _fail(exc: SiyuError) -> None:
    console.print(f"[red]{exc.code}[/red]: {exc.message}")
    if isinstance(exc.details, dict) and exc.details.get("problems"):
        for problem in exc.details["problems"]:
            console.print(f"  at {problem.get('path') or '(the rule)'}: {problem.get('message', '')}")
    raise typer.Exit(code=2)


@tags_app.command("list")
def list_tags(workspace: Workspace) -> None:
    """Every tag with its kind and how many people have it."""
    db = Database(get_settings().database_url)
    try:
        with db.read(Scope.workspace(_workspace(db, workspace))) as s:
            tags = facade.list_tags(s)
    except SiyuError as exc:
        _fail(exc)
        return
    table = Table("name", "kind", "people", "evaluated")
    table.add_column("id", no_wrap=True, min_width=29)  # whole: other commands take it
    for t in tags:
        evaluated = t.evaluated_at.strftime("%Y-%m-%d %H:%M") if t.evaluated_at else "—"
        table.add_row(t.name, t.kind, str(t.people), evaluated, t.id)
    console.print(table)


@tags_app.command("create")
def create(
    workspace: Workspace,
    name: Annotated[str, typer.Argument(help="the tag's name")],
    kind: Annotated[str, typer.Option(help="manual, rule or computed")] = "manual",
    rule: Annotated[Path | None, typer.Option(help="for a rule tag: a JSON file holding the rule")] = None,
    source: Annotated[str | None, typer.Option(help="for a computed tag: top_category, rfm_group, …")] = None,
    description: Annotated[str, typer.Option()] = "",
) -> None:
    """Create a tag; a rule is checked against the workspace's traits, events and tags."""
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        parsed = json.loads(rule.read_text(encoding="utf-8")) if rule is not None else None
    except (OSError, json.JSONDecodeError) as exc:
        console.print(f"[red]cannot read the rule[/red]: {exc}")
        raise typer.Exit(code=2) from None
    draft = TagDraft(
        name=name,
        kind=kind,  # type: ignore[arg-type]  # checked by the library
        description=description,
        rule=parsed,
        computed={"source": source} if source is not None else None,
    )
    if kind not in ("manual", "rule", "computed"):
        console.print("[red]validation_failed[/red]: kind is manual, rule or computed")
        raise typer.Exit(code=2)
    try:
        with db.transaction(Scope.workspace(_workspace(db, workspace))) as s:
            tag = facade.create_tag(s, draft, rule_catalog(s, settings.data_dir), None)
    except SiyuError as exc:
        _fail(exc)
        return
    console.print(f"created {tag.id} ({tag.kind}); the next batch run finds its people" if kind != "manual" else tag.id)


@tags_app.command("tag-file")
def tag_file(
    workspace: Workspace,
    tag_id: Annotated[str, typer.Argument(help="a manual tag's id")],
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV, XLSX, JSONL or Parquet")],
    kind: Annotated[str, typer.Option(help="profile_id, phone, email, member_no, user_id, unionid, …")] = "phone",
    column: Annotated[str | None, typer.Option(help="the column of identifiers; the first by default")] = None,
    remove: Annotated[bool, typer.Option(help="take the tag off instead")] = False,
) -> None:
    """Put a manual tag on (or off) the people a file names; every row accounted for."""
    db = Database(get_settings().database_url)
    try:
        with db.transaction(Scope.workspace(_workspace(db, workspace))) as s:
            done = facade.tag_by_file(s, tag_id, path, kind, column, None, remove)
    except SiyuError as exc:
        _fail(exc)
        return
    console.print(
        f"{done.total} rows: {done.tagged} changed now, {done.already} unchanged, {len(done.rejected)} rejected"
    )
    for r in done.rejected[:50]:
        console.print(f"  row {r.row} {r.value!r}: {r.reason}")
    if len(done.rejected) > 50:
        console.print(f"  … and {len(done.rejected) - 50} more")
