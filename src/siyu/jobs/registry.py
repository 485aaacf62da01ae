"""Task handlers by name. Domains declare handlers in their ``tasks.py`` with @task."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from siyu.core.settings import Settings, get_settings
from siyu.jobs.errors import UnknownTaskError
from siyu.storage.session import Database

# Domain task modules every worker loads; extra ones come from SIYU_TASK_MODULES.
BUILTIN_TASK_MODULES = (
    "siyu.jobs.builtin_tasks",
    "siyu.accounts.tasks",
    "siyu.ingest.tasks",
    "siyu.profiles.tasks",
    "siyu.analytics.tasks",
    "siyu.channels.tasks",
    "siyu.campaigns.tasks",
)


@dataclass(frozen=True)
class TaskContext:
    job_id: str
    workspace_id: str | None
    attempt: int
    db: Database
    # The installation's settings, as the process running the worker was given them.
    settings: Settings = field(default_factory=get_settings)


Handler = Callable[[TaskContext, dict[str, Any]], None]
_HANDLERS: dict[str, Handler] = {}


def task(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[name] = fn
        return fn

    return register


def handler_for(name: str) -> Handler:
    try:
        return _HANDLERS[name]
    except KeyError:
        raise UnknownTaskError(f"no task named {name!r} is registered") from None


def known_tasks() -> list[str]:
    return sorted(_HANDLERS)


def load_task_modules(extra: str = "") -> None:
    names = list(BUILTIN_TASK_MODULES) + [m.strip() for m in extra.split(",") if m.strip()]
    for name in names:
        importlib.import_module(name)
