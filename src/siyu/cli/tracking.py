"""``siyu links``, ``siyu pages`` and ``siyu codes``: tracked short links and QR codes, landing
pages, and WeChat codes with a scene of their own — made, listed with their counts, and their
QR images written to files. The CLI acts as the workspace's owner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from siyu.channels import codes as wechat_codes
from siyu.channels.tokens import DbTokenStore
from siyu.cli.analytics import _workspace
from siyu.core.errors import SiyuError
from siyu.core.settings import get_settings
from siyu.landing import facade as landing
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from siyu.tracking import facade as tracking

links_app = typer.Typer(help="Tracked short links and QR codes.", no_args_is_help=True)
pages_app = typer.Typer(help="Landing pages: make, publish, take down, count.", no_args_is_help=True)
codes_app = typer.Typer(help="Official account QR codes and WeCom contact ways.", no_args_is_help=True)
console = Console(soft_wrap=True)
wide = Console(soft_wrap=True, width=220)
Workspace = Annotated[str, typer.Option(help="workspace slug")]
QrOut = Annotated[Path | None, typer.Option(help="write the QR image here (.svg or .png)")]


def _fail(exc: SiyuError) -> None:
    console.print(f"[red]{exc.code}[/red]: {exc.message}")
    if isinstance(exc.details, dict):
        for problem in exc.details.get("problems", []):
            console.print(f"  at {problem.get('where') or problem.get('path')}: {problem.get('message', '')}")
    raise typer.Exit(code=2)


def _write_qr(url: str, out: Path) -> None:
    fmt: Literal["svg", "png"] = "png" if out.suffix.lower() == ".png" else "svg"
    out.write_bytes(tracking.qr_image(url, fmt, 10))
    console.print(f"QR code written to {out}")


@links_app.command("create")
def create_link(
    workspace: Workspace,
    name: Annotated[str, typer.Argument(help="where it is used: 包裹卡, 门店海报…")],
    target: Annotated[str, typer.Argument(help="the http(s) address it leads to")],
    qr: Annotated[bool, typer.Option("--qr/--link", help="a QR code (offline) or a link to share")] = True,
    channel: Annotated[str, typer.Option(help="utm_medium: offline, sms, wechat_oa…")] = "",
    utm_campaign: Annotated[str, typer.Option()] = "",
    qr_out: QrOut = None,
) -> None:
    """A tracked short link; prints it (and writes its QR image with --qr-out)."""
    settings = get_settings()
    db = Database(settings.database_url)
    medium = channel or ("offline" if qr else "")
    try:
        with db.transaction(Scope.workspace(_workspace(db, workspace))) as s:
            link = tracking.create_link(
                s, kind="qr" if qr else "link", target=target, name=name, channel=channel,
                utm={"utm_source": "siyu", "utm_medium": medium, "utm_campaign": utm_campaign},
            )  # fmt: skip
    except SiyuError as exc:
        _fail(exc)
        return
    short = tracking.short_url(settings.public_url, link.code)
    console.print(f"{link.code} {short} → {link.target}")
    if qr_out is not None:
        _write_qr(short, qr_out)


@links_app.command("list")
def list_links(workspace: Workspace) -> None:
    """Links and QR codes made by hand, newest first, with the people who opened each."""
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        with db.read(Scope.workspace(_workspace(db, workspace))) as s:
            found = tracking.list_links(s)
            counts = tracking.link_counts(s, [link.code for link in found])
    except SiyuError as exc:
        _fail(exc)
        return
    table = Table("name", "kind", "short link", "clicks", "requests", "bots")
    for link in found:
        c = counts[link.code]
        short = tracking.short_url(settings.public_url, link.code)
        table.add_row(link.name, link.kind, short, str(c.clicks), str(c.requests), str(c.bots))
    wide.print(table)


@pages_app.command("create")
def create_page(
    workspace: Workspace,
    name: Annotated[str, typer.Argument()],
    content: Annotated[Path, typer.Argument(help="a JSON file: title, button, success, consent_text, …")],
    layout: Annotated[str, typer.Option(help="signup, coupon or event")] = "signup",
    publish: Annotated[bool, typer.Option(help="publish it at once")] = False,
) -> None:
    """A landing page from a JSON file of its content; prints its id and address."""
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        fields = json.loads(content.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        console.print(f"[red]cannot read {content}[/red]: {exc}")
        raise typer.Exit(code=2) from None
    try:
        with db.transaction(Scope.workspace(_workspace(db, workspace))) as s:
            page = landing.save_page(s, landing.PageDraft(name, layout, fields), None)
            if publish:
                page = landing.publish(s, page.id, None)
    except SiyuError as exc:
        _fail(exc)
        return
    console.print(f"{page.id} {page.status} v{page.version} {settings.public_url.rstrip('/')}/p/{page.code}")


@pages_app.command("publish")
def publish_page(workspace: Workspace, page_id: Annotated[str, typer.Argument()]) -> None:
    """Publish the page's draft as its next version."""
    db = Database(get_settings().database_url)
    try:
        with db.transaction(Scope.workspace(_workspace(db, workspace))) as s:
            page = landing.publish(s, page_id, None)
    except SiyuError as exc:
        _fail(exc)
        return
    console.print(f"{page.id} {page.status} v{page.version}")


@pages_app.command("list")
def list_pages(workspace: Workspace) -> None:
    """Landing pages with their visitors, forms and form rate."""
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        with db.read(Scope.workspace(_workspace(db, workspace))) as s:
            pages = landing.list_pages(s)
            stats = landing.page_stats(s, [p.id for p in pages])
    except SiyuError as exc:
        _fail(exc)
        return
    table = Table("name", "status", "version", "address", "visitors", "forms", "form rate", "id")
    for p in pages:
        st = stats[p.id]
        address = f"{settings.public_url.rstrip('/')}/p/{p.code}"
        row = (p.name, p.status, str(p.version), address, str(st.visitors), str(st.submissions))
        table.add_row(*row, f"{st.conversion_rate:.1%}", p.id)
    wide.print(table)


@codes_app.command("create")
def create_code(
    workspace: Workspace,
    name: Annotated[str, typer.Argument()],
    kind: Annotated[str, typer.Option(help="oa_qr (official account) or wecom_contact (联系我)")] = "oa_qr",
    staff: Annotated[list[str] | None, typer.Option(help="wecom_contact: an employee's userid, once each")] = None,
    permanent: Annotated[bool, typer.Option(help="oa_qr: permanent rather than for --days")] = False,
    days: Annotated[int, typer.Option(help="oa_qr: how long a temporary code lasts (1–30)")] = 30,
    source: Annotated[str, typer.Option(help="what it belongs to, e.g. campaign:cmp_…")] = "",
    qr_out: QrOut = None,
) -> None:
    """Make the code with WeChat or WeCom through the channel's default account."""
    settings = get_settings()
    db = Database(settings.database_url)
    request = wechat_codes.CodeRequest(
        kind=kind, name=name, source=source, permanent=permanent, days=days, staff=tuple(staff or ())
    )
    try:
        workspace_id = _workspace(db, workspace)
        tokens = DbTokenStore(db, workspace_id, settings.secret_key)
        code = wechat_codes.create_code(db, workspace_id, settings.secret_key, request, tokens, None)
    except SiyuError as exc:
        _fail(exc)
        return
    console.print(f"{code.id} {code.kind} scene {code.scene} {code.url}{' (sandbox)' if code.sandbox else ''}")
    if qr_out is not None:
        _write_qr(code.url, qr_out)


@codes_app.command("list")
def list_codes(workspace: Workspace) -> None:
    """The codes, with the people who followed, scanned or added an employee through each."""
    db = Database(get_settings().database_url)
    try:
        with db.read(Scope.workspace(_workspace(db, workspace))) as s:
            found = wechat_codes.list_codes(s)
            counts = wechat_codes.code_counts(s, found)
    except SiyuError as exc:
        _fail(exc)
        return
    table = Table("name", "kind", "scene", "followed", "scanned", "added", "id")
    for c in found:
        n = counts[c.id]
        table.add_row(c.name, c.kind, c.scene, str(n.followed), str(n.scanned), str(n.added), c.id)
    wide.print(table)
