"""Product catalogue upserts by SKU."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.commerce.tables import Product


@dataclass(frozen=True)
class ProductIn:
    sku: str
    name: str
    category: str
    brand: str
    price_fen: int


@dataclass(frozen=True)
class ProductPublic:
    id: str
    sku: str
    name: str
    category: str
    brand: str
    price_fen: int


def upsert_products(scoped: Session, products: list[ProductIn]) -> dict[str, str]:
    """Create or update by SKU; returns {sku: created | updated | unchanged}."""
    existing = {p.sku: p for p in scoped.scalars(select(Product).where(Product.sku.in_({p.sku for p in products})))}
    results: dict[str, str] = {}
    for p in products:
        row = existing.get(p.sku)
        values = {"name": p.name, "category": p.category, "brand": p.brand, "price_fen": p.price_fen}
        if row is None:
            row = Product(sku=p.sku, **values)
            scoped.add(row)
            existing[p.sku] = row
            results[p.sku] = "created"
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            results[p.sku] = "updated"
        else:
            results.setdefault(p.sku, "unchanged")
    return results


def to_public(row: Product) -> ProductPublic:
    return ProductPublic(row.id, row.sku, row.name, row.category, row.brand, row.price_fen)
