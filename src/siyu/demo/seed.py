"""Load a synthetic brand into a workspace of the operational store.

Every true person becomes one profile whose identifiers are recorded as seen together (as a
brand's CRM would know them), so a full identity rebuild keeps them; loaders can instead replay
the same data through ingest and be scored against this ground truth.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from siyu.commerce.facade import (
    count_orders,
    insert_order_item_rows,
    insert_order_rows,
    insert_product_rows,
)
from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.demo.generator import Chunk, SyntheticBrand
from siyu.identity.facade import insert_identity_rows, link_identity_rows
from siyu.identity.normalise import normalise
from siyu.ingest.facade import insert_event_rows
from siyu.profiles.facade import insert_profile_rows

_TIMES = ("ordered_at", "paid_at", "shipped_at", "completed_at", "refunded_at", "cancelled_at")


def seed_brand(scoped: Session, brand: SyntheticBrand, progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Insert the brand into the session's workspace. Refuses a workspace that has orders."""
    if count_orders(scoped):
        raise ValueError("this workspace already has orders; seed a new workspace")
    insert_product_rows(
        scoped,
        [
            {"id": new_id("prd_"), **row, "created_at": utcnow(), "updated_at": utcnow()}
            for row in brand.products.to_pylist()
        ],
    )
    seen_identities: dict[tuple[str, str, str], str] = {}
    totals = {"profiles": 0, "identities": 0, "orders": 0, "order_items": 0, "events": 0}
    for chunk in brand.chunks():
        counts = _load_chunk(scoped, chunk, seen_identities)
        for key, value in counts.items():
            totals[key] += value
        if progress:
            progress(chunk.people.num_rows)
    return totals


def _load_chunk(scoped: Session, chunk: Chunk, seen: dict[tuple[str, str, str], str]) -> dict[str, int]:
    now = utcnow()
    profile_of: dict[int, str] = {}
    profiles = []
    for person in chunk.people.to_pylist():
        pid = new_id("pf_")
        profile_of[person["person_id"]] = pid
        traits = {
            "name": person["name"],
            "gender": person["gender"],
            "birthday": person["birthday"].isoformat(),
            "province": person["province"],
            "city": person["city"],
        }
        profiles.append(
            {
                "id": pid,
                "display_name": person["name"],
                "traits": traits,
                "first_seen_at": person["joined_at"],
                "last_seen_at": person["joined_at"],
                "created_at": now,
                "updated_at": now,
            }
        )
    insert_profile_rows(scoped, profiles)
    raw_identities = chunk.identities.to_pylist()
    identities = _first_holder_only([_canonical(r, profile_of[r["person_id"]]) for r in raw_identities], seen)
    insert_identity_rows(scoped, identities)
    # What the brand's CRM knew: each person's identifiers belong together.
    by_profile: dict[str, list[dict[str, Any]]] = {}
    for row in identities:
        by_profile.setdefault(row["profile_id"], []).append(row)
    link_identity_rows(scoped, list(by_profile.values()))
    # Each person's strongest identifier stands for them on events no channel id came with.
    any_identity = {r["person_id"]: seen[_key(r["kind"], r["scope"], r["value"])] for r in reversed(raw_identities)}
    order_id: dict[tuple[str, str], str] = {}
    orders: list[dict[str, Any]] = []
    for r in chunk.orders.to_pylist():
        oid = new_id("ord_")
        order_id[(r["platform"], r["order_no"])] = oid
        row = {
            k: r[k]
            for k in (
                "order_no",
                "platform",
                "store",
                "buyer_kind",
                "buyer_id",
                "status",
                "total_fen",
                "paid_fen",
                "receiver_name_masked",
                "receiver_phone_masked",
                "receiver_address_masked",
                *_TIMES,
            )
        }
        buyer = seen[_key(r["buyer_kind"], r["buyer_scope"], r["buyer_id"])]
        orders.append({"id": oid, "buyer_identity_id": buyer, "ingested_at": now, **row})
    insert_order_rows(scoped, orders)
    items = [
        {
            "id": new_id("itm_"),
            "order_id": order_id[(r["platform"], r["order_no"])],
            "sku": r["sku"],
            "quantity": r["quantity"],
            "unit_price_fen": r["unit_price_fen"],
            "amount_fen": r["amount_fen"],
        }
        for r in chunk.items.to_pylist()
    ]
    insert_order_item_rows(scoped, items)
    events = [
        {
            "id": new_id("evt_"),
            "message_id": r["message_id"],
            "type": r["type"],
            "event": r["event"],
            "identity_id": (
                seen[_key(r["identity_kind"], r["identity_scope"], r["identity_value"])]
                if r["identity_kind"] != "person"
                else any_identity[r["person_id"]]
            ),
            "properties": json.loads(r["properties"]),
            "context": {
                "source": "demo",
                "identity": {"kind": r["identity_kind"], "scope": r["identity_scope"], "value": r["identity_value"]},
            },
            "timestamp": r["timestamp"],
            "received_at": now,
        }
        for r in chunk.events.to_pylist()
    ]
    insert_event_rows(scoped, events)
    return {
        "profiles": len(profiles),
        "identities": len(identities),
        "orders": len(orders),
        "order_items": len(items),
        "events": len(events),
    }


def _canonical(raw: dict[str, Any], profile_id: str) -> dict[str, Any]:
    """Identities are stored in their normalised form (E.164 phones, platform scopes)."""
    ident = normalise(raw["kind"], raw["value"], raw["scope"])
    return {
        "id": new_id("idn_"),
        "profile_id": profile_id,
        "kind": ident.kind.value,
        "scope": ident.scope,
        "value": ident.value,
        "weak": ident.weak,
        "first_seen_at": raw["first_seen_at"],
    }


def _key(kind: str, scope: str, value: str) -> tuple[str, str, str]:
    ident = normalise(kind, value, scope)
    return (ident.kind.value, ident.scope, ident.value)


def _first_holder_only(rows: list[dict[str, Any]], seen: dict[tuple[str, str, str], str]) -> list[dict[str, Any]]:
    """A value held by several people (a family phone, a common masked phone) is stored once,
    on the first person; ``seen`` maps every stored value to its identity id."""
    unique = []
    for row in rows:
        key = (row["kind"], row["scope"], row["value"])
        if key not in seen:
            seen[key] = row["id"]
            unique.append(row)
    return unique
