"""``siyu analytics``: run the batch now, and read its runs and RFM results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from siyu.accounts import facade as accounts
from siyu.analytics import facade
from siyu.analytics.runs import run_batch
from siyu.core.errors import ConflictError, NotFoundError, SiyuError
from siyu.core.settings import get_settings
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

analytics_app = typer.Typer(
    help="The batch analytics engine: RFM and the other computed metrics.", no_args_is_help=True
)
console = Console(soft_wrap=True)


def _workspace(db: Database, slug: str) -> str:
    with db.transaction(Scope.unscoped_system()) as system:
        ws = accounts.find_workspace_by_slug(system, slug)
    if ws is None:
        raise NotFoundError(f"no workspace {slug}")
    return ws.id


def _fail(exc: SiyuError) -> None:
    console.print(f"[red]{exc.code}[/red]: {exc.message}")
    raise typer.Exit(code=2)


@analytics_app.command("run")
def run(
    workspace: Annotated[str, typer.Option(help="workspace slug")],
    only: Annotated[str, typer.Option("--scope", help="full, or segments: only refresh the segments")] = "full",
) -> None:
    """Run the workspace's batch now, in this process, and print its step log."""
    run_now(workspace, only)


def run_now(workspace: str, only: str) -> None:
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        scope = Scope.workspace(_workspace(db, workspace))
        run_id = _queued_run(db, scope, settings.data_dir, only)
    except SiyuError as exc:
        _fail(exc)
        return
    try:
        # The queued job then finds the run done and leaves it.
        run_batch(lambda: db.read(scope), lambda: db.transaction(scope), run_id, settings.data_dir)
    finally:
        with db.read(scope) as s:
            done = facade.get_run(s, run_id)
        console.print(json.dumps({"status": done.status, "error": done.error, "steps": done.steps}, ensure_ascii=False))


def _queued_run(db: Database, scope: Scope, data_dir: Path, only: str = "full") -> str:
    """A new run, or the one already queued (a worker has not started it): this process runs it."""
    try:
        with db.transaction(scope) as s:
            return facade.request_run(s, None, data_dir, scope=only).id
    except ConflictError as exc:
        run_id = str((exc.details or {}).get("run_id", ""))
        with db.read(scope) as s:
            if run_id and facade.get_run(s, run_id).status == "queued":
                return run_id
        raise


@analytics_app.command("rfm")
def rfm(workspace: Annotated[str, typer.Option(help="workspace slug")]) -> None:
    """Print the eight RFM groups as the last run left them."""
    db = Database(get_settings().database_url)
    try:
        scope = Scope.workspace(_workspace(db, workspace))
    except SiyuError as exc:
        _fail(exc)
        return
    with db.read(scope) as s:
        matrix = facade.rfm_matrix(s)
    console.print(f"as of {matrix.as_of}: {matrix.people:,} people, {matrix.monetary_fen / 100:,.2f} yuan")
    for g in matrix.groups:
        console.print(
            f"{g.name}\t{g.people:>10,}\t{g.people_share:>7.1%}"
            f"\t{g.monetary_fen / 100:>16,.2f}\t{g.monetary_share:>7.1%}"
        )
