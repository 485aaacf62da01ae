"""The FastAPI application: API routes, the console's static files, background workers."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from siyu import __version__
from siyu.api.errors import error_response, install_error_handlers
from siyu.api.event_gate import EventGate, Services
from siyu.api.keycache import KeyCache
from siyu.api.routes import (
    analytics,
    audit,
    campaigns,
    channels,
    codes,
    commerce,
    consents,
    dashboard,
    events,
    health,
    holdouts,
    identity,
    imports,
    jobs,
    keys,
    landing,
    links,
    profiles,
    receipts,
    segment,
    segments,
    sends,
    session,
    tags,
    templates,
    wechat,
    workspaces,
)
from siyu.core.settings import Settings, get_settings
from siyu.ingest.writer import EventWriter
from siyu.jobs.runtime import start_background
from siyu.storage.session import Database

log = logging.getLogger("siyu.api")
REPO_WEB_DIST = Path(__file__).resolve().parents[3] / "web" / "dist"


def _web_dist(settings: Settings) -> Path | None:
    path = settings.web_dist or REPO_WEB_DIST
    return path if (path / "index.html").is_file() else None


class NoStore:
    """API answers carry personal data and per-workspace state: never cache them. (A plain ASGI
    middleware: the event API answers thousands of requests a second.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_no_store)


def _tune_garbage_collector() -> None:
    """Keep collector pauses out of request latency in a serving process.

    What exists once the app is built (modules, routes, mappers) is never garbage: frozen, it is not
    scanned again. Collections of the young generation then run every 50,000 allocations
    instead of 700 — an event request allocates hundreds of objects, so the default collects
    many times a second and each full collection stalled every waiting request for ~100 ms.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


class SiyuAPI(FastAPI):
    """The API, with the tracking calls answered in front of everything the framework does per
    request (its middleware, telemetry hooks and routing): see :mod:`siyu.api.event_gate`."""

    event_gate: EventGate | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.event_gate is None:
            await super().__call__(scope, receive, send)
        else:
            await self.event_gate(scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, db: Database | None = None, *, background: bool = False) -> FastAPI:
    """Build the app. ``background`` starts the scheduler and in-process workers (``siyu serve``)."""
    settings = settings or get_settings()
    db = db or Database(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        threads: list[threading.Thread] = []
        if background:
            threads = start_background(db, settings, stop)
        try:
            yield
        finally:
            app.state.event_writer.stop()
            stop.set()
            for thread in threads:
                thread.join(timeout=10)

    app = SiyuAPI(
        title="siyu API",
        version=__version__,
        lifespan=lifespan,
        description="siyu (私域): customer data platform and marketing automation for brands.",
    )
    app.state.settings = settings
    app.state.db = db
    app.state.event_writer = EventWriter(db)
    app.state.key_cache = KeyCache()
    install_error_handlers(app)

    app.add_middleware(NoStore)
    # In front of everything: answers the tracking calls, hands the rest to the framework.
    app.event_gate = EventGate(app.framework, Services(db, app.state.key_cache, app.state.event_writer))

    for module in (
        segment,
        health,
        session,
        workspaces,
        keys,
        audit,
        jobs,
        dashboard,
        events,
        profiles,
        identity,
        commerce,
        consents,
        imports,
        wechat,
        analytics,
        tags,
        segments,
        holdouts,
        channels,
        codes,
        templates,
        sends,
        receipts,
        campaigns,
        links,
        landing,
    ):
        app.include_router(module.router)
    _mount_console(app, settings)
    return app


def _mount_console(app: FastAPI, settings: Settings) -> None:
    dist = _web_dist(settings)
    if dist is None:

        @app.get("/", include_in_schema=False)
        def console_missing() -> HTMLResponse:
            return HTMLResponse(
                "<h1>siyu</h1><p>The console is not built. Run <code>npm ci && npm run build</code> "
                "in <code>web/</code>, or use the API at <a href='/docs'>/docs</a>.</p>"
            )

        return
    if (dist / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=dist / "assets"), name="assets")
    index = dist / "index.html"

    @app.get("/{path:path}", include_in_schema=False)
    def console(path: str, request: Request) -> Response:
        # API paths that matched nothing are real 404s, not the console.
        if path.startswith(("api/", "v1/")):
            return error_response(404, "not_found", "no such endpoint")
        candidate = (dist / path).resolve()
        if path and candidate.is_file() and dist.resolve() in candidate.parents:
            return FileResponse(candidate)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})


def serving_app() -> FastAPI:
    """The app as ``siyu serve`` runs it, for server processes started by import string."""
    app = create_app(get_settings(), background=True)
    _tune_garbage_collector()
    return app
