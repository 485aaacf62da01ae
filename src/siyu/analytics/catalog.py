"""What a workspace's rules may name, gathered for checking a rule on save: the traits people
have (and the types each reads as), the events in the event log, the tags, the RFM groups, the
lifecycle stages, the community groups and the segments. Traits, events and groups come from the
batch engine's snapshots when there are any (a scan of Parquet columns), else from the store (a
workspace before its first run)."""

from __future__ import annotations

from pathlib import Path

import duckdb
from sqlalchemy.orm import Session

from siyu.accounts.facade import get_workspace
from siyu.analytics.config import workspace_config
from siyu.analytics.rfm import GROUP_NAMES, GROUPS
from siyu.analytics.snapshots import snapshot_path
from siyu.analytics.trait_rows import trait_rows
from siyu.ingest.facade import event_names, group_ids
from siyu.profiles.tables import Profile
from siyu.rules.catalog import Catalog
from siyu.segments.facade import segment_names
from siyu.storage.arrow_transfer import read_arrow
from siyu.storage.scoping import require_workspace
from siyu.tags.facade import tag_refs

# The rule types a trait of each kind can be read as (a date is also a string).
KIND_TYPES = {"s": ("string",), "n": ("number",), "d": ("date", "string"), "b": ("boolean",), "l": ("list",)}


def rule_catalog(scoped: Session, data_dir: Path) -> Catalog:
    workspace_id = require_workspace(scoped)
    traits_path = snapshot_path(data_dir, workspace_id, "traits")
    events_path = snapshot_path(data_dir, workspace_id, "events")
    con = duckdb.connect()
    try:
        if traits_path.exists():
            kinds = con.sql(
                f"SELECT DISTINCT key, kind FROM read_parquet('{_quoted(traits_path)}') WHERE key IS NOT NULL"
            ).fetchall()
        else:
            timezone = get_workspace(scoped, workspace_id).timezone
            con.register("rows", trait_rows(read_arrow(scoped, Profile, ("id", "traits")), timezone))
            kinds = con.sql("SELECT DISTINCT key, kind FROM rows WHERE key IS NOT NULL").fetchall()
        if events_path.exists():
            path = _quoted(events_path)
            events = [
                r[0]
                for r in con.sql(
                    f"SELECT DISTINCT event FROM read_parquet('{path}') WHERE event IS NOT NULL"
                ).fetchall()
            ]
            groups = [
                r[0]
                for r in con.sql(
                    f"SELECT DISTINCT group_id FROM read_parquet('{path}') "
                    "WHERE type = 'group' AND group_id IS NOT NULL"
                ).fetchall()
            ]
        else:
            events, groups = event_names(scoped), group_ids(scoped)
    finally:
        con.close()
    traits: dict[str, set[str]] = {}
    for key, kind in kinds:
        traits.setdefault(key, set()).update(KIND_TYPES.get(kind, ()))
    config = workspace_config(scoped)
    return Catalog(
        traits={k: frozenset(v) for k, v in traits.items()},
        events=frozenset(events),
        tags=tag_refs(scoped),
        rfm_groups=frozenset(GROUPS.values()),
        stages=frozenset(s.code for s in config.lifecycle.stages),
        groups=frozenset(groups),
        segments=segment_names(scoped),
    )


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def option_names(scoped: Session) -> tuple[dict[str, str], dict[str, str]]:
    """What operators call the RFM groups and the lifecycle stages: (groups, stages), code → name."""
    stages = {s.code: s.name for s in workspace_config(scoped).lifecycle.stages}
    return dict(GROUP_NAMES), stages
