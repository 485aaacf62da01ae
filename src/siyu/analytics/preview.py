"""A rule's people before it is saved: how many, of how many, and a few of them — for the
segment builder's live count. The rule is checked as on save, then compiled over the batch
engine's snapshots (as of the last transfer) with the RFM and lifecycle results the store holds,
and the tags and segment memberships people have now (only those the rule asks about).

The web process keeps each recently previewed workspace's inputs in an in-memory engine, coded
with integer people (``rule_inputs.Coded``) and materialised table by table as rules first need
them, so that a builder's successive counts read memory, not files. An engine is rebuilt when
the snapshots or the results it was made from change; a few are kept, the least recently used
dropped. It is this process's own DuckDB, never shared with the batch runner.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
from ibis.backends import BaseBackend

from siyu.analytics.rule_inputs import (
    LIFECYCLE_RESULTS,
    RFM_RESULTS,
    Coded,
    coded_snapshot_inputs,
    kept_by_code,
    kept_results,
)
from siyu.analytics.snapshots import changed_through, snapshot_dir, snapshot_path
from siyu.core.errors import ConflictError
from siyu.rules.buckets import seeds_used
from siyu.rules.catalog import Catalog, check_rule, segments_used, tags_used
from siyu.rules.compiler import Moment, compile_rule, inputs_needed
from siyu.rules.nodes import parse_rule
from siyu.segments.facade import held_members
from siyu.tags.facade import held_tags

log = logging.getLogger("siyu.analytics.preview")
SAMPLE = 20
MAX_ENGINES = 2
WARMED = ("traits", "rfm", "lifecycle", "purchases", "reach", "events", "items", "groups")


@dataclass(frozen=True)
class RulePreview:
    people: int  # the rule selects
    everyone: int  # of the workspace's people
    sample: list[str]  # a few of them (profile ids), newest first
    as_of: datetime | None  # the snapshots' moment
    ms: int


@dataclass
class _Engine:
    version: tuple[Any, ...]
    con: BaseBackend
    codes: Coded
    lock: threading.Lock
    warming: bool = False
    warmer: threading.Thread | None = None


_ENGINES: OrderedDict[tuple[str, str], _Engine] = OrderedDict()
_ENGINES_LOCK = threading.Lock()


@atexit.register
def _stop_warming() -> None:
    """Before the process ends, stop the engines' warming: a thread ended by the interpreter in
    the middle of the engine's work would abort the process instead of letting it exit."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        engine.codes.closed = True
        raw = getattr(engine.con, "con", None)
        if raw is not None:
            raw.interrupt()
    for engine in engines:
        if engine.warmer is not None:
            engine.warmer.join(timeout=30)
        with engine.lock:
            engine.con.disconnect()


def preview_rule(
    scoped: Any, data_dir: Path, workspace_id: str, rule: dict[str, Any], catalog: Catalog, timezone: str, now: datetime
) -> RulePreview:
    started = time.perf_counter()
    node = parse_rule(rule)
    check_rule(node, catalog)
    as_of = changed_through(snapshot_path(data_dir, workspace_id, "identities"))
    if as_of is None:
        raise ConflictError("there is nothing to count yet: run the batch once (分析 → 立即运行)")
    needed = inputs_needed(node)
    tags = held_tags(scoped, sorted(tags_used(node))) if "tags" in needed else None
    members = held_members(scoped, sorted(segments_used(node))) if "segments" in needed else None
    engine = _engine(data_dir, workspace_id, as_of)
    with engine.lock:
        codes = engine.codes
        codes.draw(seeds_used(node))
        if tags is not None:
            codes.replace("tags", _strings(tags))
        if members is not None:
            codes.replace("segments", _strings(members))
        inputs = codes.inputs(needed)
        chosen = compile_rule(node, inputs, Moment(now, timezone))
        people = int(chosen.count().to_pyarrow().as_py())
        everyone = int(codes.everyone.sum())
        picked = chosen.order_by(chosen.profile_id.desc()).limit(SAMPLE).to_pyarrow().column("profile_id")
        sample = codes.decode(picked.combine_chunks()).to_pylist()
        if not engine.warming:  # after the first count, which should not wait for it
            engine.warming = True
            engine.warmer = threading.Thread(target=_warm, args=(engine,), name="preview-warm", daemon=True)
            engine.warmer.start()
    return RulePreview(people, everyone, sample, as_of, int((time.perf_counter() - started) * 1000))


def _engine(data_dir: Path, workspace_id: str, as_of: datetime) -> _Engine:
    """The workspace's engine, made anew if what it was made from has changed since."""
    results = snapshot_dir(data_dir, workspace_id) / "results"
    version = (as_of, *(_mtime(results / name) for name in (RFM_RESULTS, LIFECYCLE_RESULTS)))
    key = (str(data_dir), workspace_id)
    with _ENGINES_LOCK:
        found = _ENGINES.get(key)
        if found is not None and found.version == version:
            _ENGINES.move_to_end(key)
            return found
        con = ibis.duckdb.connect()
        rfm, stages = kept_results(con, data_dir, workspace_id)
        by_code = kept_by_code(data_dir, workspace_id)
        codes = coded_snapshot_inputs(con, data_dir, workspace_id, {"rfm": rfm, "lifecycle": stages}, by_code=by_code)
        engine = _Engine(version, con, codes, threading.Lock())
        _ENGINES[key] = engine
        stale = [found] if found is not None else []
        while len(_ENGINES) > MAX_ENGINES:
            stale.append(_ENGINES.popitem(last=False)[1])
    for old in stale:
        with old.lock:  # once any preview still counting on it is done
            old.codes.closed = True
            old.con.disconnect()
    return engine


def _warm(engine: _Engine) -> None:
    """Read every input into the engine ahead of the rules that will need them, one table at a
    time, so that previews asked for meanwhile wait for one table at most."""
    for name in WARMED:
        with engine.lock:
            if engine.codes.closed:
                return
            try:
                engine.codes.inputs([name])
            except Exception:  # the files went (a newer run, a deleted workspace): previews build anew
                if not engine.codes.closed:  # (closed: stopped as the process ends)
                    log.warning("could not read %s into the preview engine", name, exc_info=True)
                return
        time.sleep(0.05)  # a preview waiting for the engine goes first (the lock is not fair)


def _mtime(path: Path) -> float | None:
    return path.stat().st_mtime if path.exists() else None


def _strings(table: pa.Table) -> pa.Table:
    """Strings throughout (an empty read carries the store's types, which are strings anyway)."""
    return table.cast(pa.schema([pa.field(f.name, pa.string()) for f in table.schema]))
