"""Ingest jobs: file imports run by workers, with progress saved as they go."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siyu.ingest.imports import facade
from siyu.ingest.imports.run import ImportReport, run_import
from siyu.ingest.imports.tables import Import
from siyu.jobs.registry import TaskContext, task
from siyu.storage.planner import refresh_statistics
from siyu.storage.scoping import Scope


@task("ingest.import")
def process_import(ctx: TaskContext, payload: dict[str, Any]) -> None:
    workspace_id = ctx.workspace_id
    if workspace_id is None:
        raise ValueError("an import job needs a workspace")
    scope = Scope.workspace(workspace_id)
    import_id = str(payload["import_id"])
    with ctx.db.transaction(scope) as s:
        row = s.get(Import, import_id)
        if row is None:
            return
        path, preset_name, options = Path(row.path), row.preset, dict(row.options or {})
        facade.reset_rejections(s, import_id)
        facade.mark(s, import_id, status="running", error=None)

    def save_rejections(rows: list[tuple[int, str]]) -> None:
        with ctx.db.transaction(scope) as s:
            facade.add_rejections(s, import_id, rows)

    def progress(report: ImportReport) -> None:
        with ctx.db.transaction(scope) as s:
            facade.mark(
                s,
                import_id,
                total=report.total,
                accepted=report.accepted,
                rejected=report.rejected_count,
                created=report.created,
                updated=report.updated,
                unchanged=report.unchanged,
            )

    try:
        preset = facade.preset_for(preset_name, options)
        report = run_import(
            lambda: ctx.db.transaction(scope),
            path,
            preset,
            progress=progress,
            refresh_statistics=lambda: refresh_statistics(ctx.db.engine),
            on_rejected=save_rejections,
        )
        progress(report)
    except Exception as exc:
        with ctx.db.transaction(scope) as s:
            facade.mark(s, import_id, status="failed", error=str(exc)[:2000], finished_at=facade.finished())
        raise
    with ctx.db.transaction(scope) as s:
        facade.mark(s, import_id, status="done", finished_at=facade.finished())
