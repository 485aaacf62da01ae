"""``siyu`` command line: migrate, serve, worker, demo, workspace, user, key, openapi."""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from siyu.accounts import facade
from siyu.accounts.contracts import KeyScope, Principal, Role
from siyu.analytics import facade as analytics
from siyu.channels.prepare import Links
from siyu.cli.analytics import analytics_app
from siyu.cli.campaigns import campaigns_app
from siyu.cli.segments import segments_app
from siyu.cli.tags import tags_app
from siyu.cli.tracking import codes_app, links_app, pages_app
from siyu.core.errors import SiyuError
from siyu.core.settings import get_settings
from siyu.demo.channels import seed_channels
from siyu.demo.segments import seed_segments
from siyu.demo.tags import seed_tags
from siyu.storage import migrate as migrations
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

app = typer.Typer(help="siyu (私域): customer data platform and marketing automation.", no_args_is_help=True)
demo_app = typer.Typer(help="The synthetic demo brand.", no_args_is_help=True)
workspace_app = typer.Typer(help="Workspaces (one per brand).", no_args_is_help=True)
user_app = typer.Typer(help="Console users.", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
app.add_typer(workspace_app, name="workspace")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")
app.add_typer(analytics_app, name="analytics")
app.add_typer(tags_app, name="tags")
app.add_typer(segments_app, name="segments")
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(links_app, name="links")
app.add_typer(pages_app, name="pages")
app.add_typer(codes_app, name="codes")
console = Console(soft_wrap=True)
SYSTEM = Scope.unscoped_system()


def _db() -> Database:
    return Database(get_settings().database_url)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    )


def _fail(exc: SiyuError) -> None:
    console.print(f"[red]{exc.code}[/red]: {exc.message}")
    raise typer.Exit(code=2)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (safe to run again)."""
    db = _db()
    migrations.upgrade(db.engine)
    console.print(f"database at revision {migrations.current_revision(db.engine)}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    processes: Annotated[int, typer.Option(min=1, max=64, help="server processes (one per core)")] = 1,
    access_log: Annotated[bool, typer.Option(help="log every request")] = True,
) -> None:
    """Serve the API and console, with the scheduler and workers in the same process — or in each
    of ``--processes`` processes sharing the port, the kernel spreading connections across them
    (schedules and jobs are safe to share)."""
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    host, port = host or settings.host, port or settings.port
    if processes > 1:
        from siyu.api.processes import serve_processes

        serve_processes(host, port, processes, access_log)
    else:
        import uvicorn

        from siyu.api.app import serving_app

        uvicorn.run(serving_app(), host=host, port=port, access_log=access_log, log_level="info")


@app.command()
def worker(
    lease_seconds: Annotated[float | None, typer.Option(help="job lease length")] = None,
    queue: Annotated[list[str] | None, typer.Option(help="only these queues")] = None,
) -> None:
    """Run one more worker process against the same database."""
    from siyu.jobs.registry import load_task_modules
    from siyu.jobs.worker import Worker

    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    load_task_modules(settings.task_modules)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    Worker(
        _db(),
        lease_seconds=lease_seconds or settings.job_lease_seconds,
        poll_seconds=settings.job_poll_seconds,
        queues=queue,
        settings=settings,
    ).run_forever(stop)


@app.command()
def openapi(out: Annotated[Path | None, typer.Option(help="write to a file")] = None) -> None:
    """Print the OpenAPI schema (the console's API client is generated from it)."""
    from siyu.api.app import create_app

    text = json.dumps(create_app().openapi(), ensure_ascii=False, indent=2) + "\n"
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)


@workspace_app.command("create")
def workspace_create(
    name: Annotated[str, typer.Option(help="display name, e.g. 溪谷美妆")],
    slug: Annotated[str, typer.Option(help="short id, lowercase letters/digits/-")],
    owner: Annotated[str | None, typer.Option(help="email of an existing user to make owner")] = None,
    timezone: Annotated[str, typer.Option()] = "Asia/Shanghai",
) -> None:
    """Create a workspace for a brand."""
    try:
        with _db().transaction(SYSTEM) as system:
            owner_id = None
            if owner:
                user = facade.find_user_by_email(system, owner)
                if user is None:
                    raise SiyuError(f"no user {owner}", code="not_found")
                owner_id = user.id
            ws = facade.create_workspace(system, name=name, slug=slug, timezone=timezone, owner_user_id=owner_id)
        with _db().transaction(Scope.workspace(ws.id)) as scoped:
            analytics.install_default_schedule(scoped, ws.timezone, get_settings().data_dir)
    except SiyuError as exc:
        _fail(exc)
    console.print(f"workspace {ws.slug} created: {ws.id}")


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option()],
    password: Annotated[str | None, typer.Option(help="omit to generate one")] = None,
    workspace: Annotated[str | None, typer.Option(help="slug of a workspace to join")] = None,
    role: Annotated[Role, typer.Option()] = Role.VIEWER,
    name: Annotated[str, typer.Option(help="display name")] = "",
) -> None:
    """Create a console user, optionally with a role in a workspace."""
    chosen = password or secrets.token_urlsafe(12)
    db = _db()
    try:
        with db.transaction(SYSTEM) as system:
            ws = facade.find_workspace_by_slug(system, workspace) if workspace else None
            if workspace and ws is None:
                raise SiyuError(f"no workspace {workspace}", code="not_found")
            user = facade.create_user(system, email=email, password=chosen, display_name=name)
        if ws is not None:
            with db.transaction(Scope.workspace(ws.id)) as scoped:
                owner = Principal(workspace_id=ws.id, role=Role.OWNER)
                facade.add_member(scoped, owner, user_id=user.id, role=role)
    except SiyuError as exc:
        _fail(exc)
    console.print(f"user {user.email} created" + ("" if password else f"; password: {chosen}"))


@key_app.command("create")
def key_create(
    workspace: Annotated[str, typer.Option(help="workspace slug")],
    name: Annotated[str, typer.Option()] = "cli",
    scope: Annotated[KeyScope, typer.Option(help="ingest: write key for events; full: the API")] = KeyScope.FULL,
) -> None:
    """Create an API key and print its token once."""
    db = _db()
    try:
        with db.transaction(SYSTEM) as system:
            ws = facade.find_workspace_by_slug(system, workspace)
        if ws is None:
            raise SiyuError(f"no workspace {workspace}", code="not_found")
        with db.transaction(Scope.workspace(ws.id)) as scoped:
            created = facade.create_api_key(
                scoped, Principal(workspace_id=ws.id, role=Role.OWNER), name=name, scope=scope
            )
    except SiyuError as exc:
        _fail(exc)
    console.print(f"key {created.key.id} ({scope.value}): {created.token}")


import_app = typer.Typer(help="File imports.", no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("orders")
def import_orders(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV, XLSX, JSONL or Parquet")],
    workspace: Annotated[str, typer.Option(help="workspace slug")],
    preset: Annotated[str, typer.Option(help="taobao, jd, douyin, youzan, or custom with --map")] = "taobao",
    platform: Annotated[str, typer.Option(help="with --preset custom")] = "offline",
    buyer_kind: Annotated[str | None, typer.Option(help="with --preset custom, e.g. member_no")] = None,
    mapping: Annotated[list[str] | None, typer.Option("--map", help="field=column, with --preset custom")] = None,
    rejects: Annotated[Path | None, typer.Option(help="write rejected rows (row, reason) to this CSV")] = None,
) -> None:
    """Import an order export. Every row is accounted for; re-importing changes nothing."""
    import csv as csv_module
    from contextlib import ExitStack

    from siyu.ingest.imports.presets import PRESETS, custom_preset
    from siyu.ingest.imports.run import ImportReport, run_import
    from siyu.storage.planner import refresh_statistics

    db = _db()
    with db.transaction(SYSTEM) as system:
        ws = facade.find_workspace_by_slug(system, workspace)
    if ws is None:
        _fail(SiyuError(f"no workspace {workspace}", code="not_found"))
        return
    try:
        if preset == "custom":
            pairs = dict(m.split("=", 1) for m in (mapping or []) if "=" in m)
            chosen = custom_preset(platform, buyer_kind, pairs)
        elif preset in PRESETS:
            chosen = PRESETS[preset]
        else:
            raise SiyuError(f"unknown preset {preset!r}; one of {', '.join(PRESETS)} or custom", code="invalid")
    except SiyuError as exc:
        _fail(exc)
        return
    with _progress() as progress, ExitStack() as files:
        task = progress.add_task(f"importing {file.name}", total=None)

        def advance(report: ImportReport) -> None:
            progress.update(task, completed=report.total)

        on_rejected = None
        if rejects is not None:  # written as the import goes
            writer = csv_module.writer(files.enter_context(rejects.open("w", encoding="utf-8-sig", newline="")))
            writer.writerow(["row", "reason"])
            on_rejected = writer.writerows
        report = run_import(
            lambda: db.transaction(Scope.workspace(ws.id)),
            file,
            chosen,
            timezone=ws.timezone,
            progress=advance,
            refresh_statistics=lambda: refresh_statistics(db.engine),
            on_rejected=on_rejected,
        )
    summary = {
        "total": report.total,
        "accepted": report.accepted,
        "rejected": report.rejected_count,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
    }
    console.print(json.dumps(summary))


identity_app = typer.Typer(help="The identity graph.", no_args_is_help=True)
app.add_typer(identity_app, name="identity")


@identity_app.command("rebuild")
def identity_rebuild(
    workspace: Annotated[str, typer.Option(help="workspace slug")],
    engine: Annotated[str, typer.Option(help="memory (one machine) or spark (pip install 'siyu[spark]')")] = "memory",
) -> None:
    """Rebuild the workspace's identity graph now, repair people that differ, print the run.

    With ``--engine spark`` the rebuild runs as Ibis expressions on the Spark session that
    ``SparkSession.builder`` finds (spark-submit settings, or local mode)."""
    from siyu.identity.rebuild import rebuild
    from siyu.identity.verify import Engine
    from siyu.profiles.rebuilds import list_rebuilds, request_rebuild, run_rebuild

    chosen: Engine = rebuild
    if engine == "spark":
        import ibis
        from pyspark.sql import SparkSession

        from siyu.identity.rebuild_ibis import rebuild_on

        backend = ibis.pyspark.connect(SparkSession.builder.appName("siyu-identity-rebuild").getOrCreate())

        def on_spark(records: Any, rules: Any, must: Any, cannot: Any) -> Any:
            return rebuild_on(backend, records, rules, must, cannot)

        chosen = on_spark
    elif engine != "memory":
        _fail(SiyuError(f"unknown engine {engine!r}: memory or spark", code="invalid"))
        return

    db = _db()
    with db.transaction(SYSTEM) as system:
        ws = facade.find_workspace_by_slug(system, workspace)
    if ws is None:
        _fail(SiyuError(f"no workspace {workspace}", code="not_found"))
        return
    scope = Scope.workspace(ws.id)
    try:
        with db.transaction(scope) as s:
            run = request_rebuild(s, actor_id=None)
    except SiyuError as exc:
        _fail(exc)
        return
    run_rebuild(lambda: db.transaction(scope), run.id, chosen)  # the queued job then finds it done
    with db.transaction(scope) as s:
        done = next(r for r in list_rebuilds(s) if r.id == run.id)
    keys = ("status", "identifiers", "links", "people", "shared", "conflicts", "repaired", "duration_ms")
    console.print(json.dumps({k: getattr(done, k) for k in keys}))


@demo_app.command("seed")
def demo_seed(
    customers: Annotated[int, typer.Option(min=1, help="number of people")] = 5000,
    seed: Annotated[int, typer.Option(help="random seed: same seed, same brand")] = 1,
    until: Annotated[str | None, typer.Option(help="last day of history, YYYY-MM-DD (default today)")] = None,
    workspace: Annotated[str, typer.Option(help="workspace slug")] = "demo",
    out: Annotated[Path | None, typer.Option(help="write files here instead of the database")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv (with --out)")] = "parquet",
    orders_per_buyer: Annotated[float, typer.Option(help="mean orders per buyer")] = 3.0,
) -> None:
    """Generate the demo brand into a workspace (creating it and a login), or into files."""
    from siyu.demo.generator import SyntheticBrand
    from siyu.demo.seed import seed_brand
    from siyu.demo.writer import write_brand

    end = _until(until)
    brand = SyntheticBrand(seed=seed, customers=customers, until=end, orders_per_buyer=orders_per_buyer)
    with _progress() as progress:
        task = progress.add_task("generating", total=customers)

        def advance(n: int) -> None:
            progress.advance(task, n)

        if out is not None:
            if fmt not in ("parquet", "csv"):
                raise typer.BadParameter("format must be parquet or csv")
            counts = write_brand(brand, out, "parquet" if fmt == "parquet" else "csv", advance)
            progress.stop()
            console.print(json.dumps(counts))
            return
        db = _db()
        ws_id, login = _ensure_demo_workspace(db, workspace)
        with db.transaction(Scope.workspace(ws_id)) as scoped:
            try:
                counts = seed_brand(scoped, brand, advance)
            except ValueError as exc:
                progress.stop()
                console.print(f"[yellow]{exc}[/yellow]")
                counts = {}
        if counts:
            # The batch's first run, so the segments page has RFM and stages to show: a worker
            # (`siyu serve`) runs it, or `siyu analytics run` now.
            with db.transaction(Scope.workspace(ws_id)) as scoped:
                seed_tags(scoped, get_settings().data_dir)
                seed_segments(scoped, get_settings().data_dir)
            with db.transaction(Scope.workspace(ws_id)) as scoped:
                settings = get_settings()
                seed_channels(scoped, Links(settings.public_url, settings.secret_key))
            with db.transaction(Scope.workspace(ws_id)) as scoped, contextlib.suppress(SiyuError):
                analytics.request_run(scoped, None, get_settings().data_dir)
    console.print(json.dumps(counts))
    if login:
        console.print(f"login: {login[0]}  password: {login[1]}")


def _until(value: str | None) -> datetime:
    if value is None:
        now = datetime.now(UTC)
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError as exc:
        raise typer.BadParameter("until must be YYYY-MM-DD") from exc


DEMO_EMAIL = "demo@siyu.local"


def _ensure_demo_workspace(db: Database, slug: str) -> tuple[str, tuple[str, str] | None]:
    """Create the demo workspace and its owner login once; the password is kept under var/."""
    cred_file = Path("var") / "demo-login.txt"
    with db.transaction(SYSTEM) as system:
        ws = facade.find_workspace_by_slug(system, slug)
        user = facade.find_user_by_email(system, DEMO_EMAIL)
        login = None
        if user is None:
            password = secrets.token_urlsafe(9)
            user = facade.create_user(system, email=DEMO_EMAIL, password=password, display_name="演示运营")
            cred_file.parent.mkdir(parents=True, exist_ok=True)
            cred_file.write_text(f"{DEMO_EMAIL} {password}\n", encoding="utf-8")
            login = (DEMO_EMAIL, password)
        if ws is None:
            ws = facade.create_workspace(system, name="溪谷美妆（演示）", slug=slug, owner_user_id=user.id)
    with db.transaction(Scope.workspace(ws.id)) as scoped:
        analytics.install_default_schedule(scoped, ws.timezone, get_settings().data_dir)
    return ws.id, login


@demo_app.command("login")
def demo_login() -> None:
    """Print the demo console login kept in var/demo-login.txt."""
    cred_file = Path("var") / "demo-login.txt"
    if not cred_file.is_file():
        console.print("no demo login yet; run `siyu demo seed`")
        raise typer.Exit(code=1)
    email, password = cred_file.read_text(encoding="utf-8").split()
    console.print(f"console: http://{get_settings().host}:{get_settings().port}  login: {email}  password: {password}")


if __name__ == "__main__":
    app()
