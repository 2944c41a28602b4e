"""The demo's record fields: its lists (products, processes, customers, suppliers; an old
pinion archived once the records naming it exist) and, on each new demo record, a product
or process, lot, quantity, customer or supplier, immediate action, cost of non-quality and,
with its cause analysis, a 5 Whys analysis and its main cause: written through the services,
so the history holds them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from qalitel import demo_data as data
from qalitel.records.field_models import CAUSE_CATEGORIES, CatalogEntry
from qalitel.records.fields import analysis, catalog
from qalitel.records.models import NonConformity
from qalitel.users.models import User
from tenants.context import tdb

ENTRIES = (
    ("product", "Arbre Ø25"), ("product", "Carter aluminium C12"), ("product", "Support acier S4"),
    ("product", "Pignon Z18 (ancienne série)"),
    ("process", "Rectification"), ("process", "Peinture poudre"), ("process", "Expédition"),
    ("customer", "Automobiles Martin"), ("customer", "Nordic Trucks AB"),
    ("supplier", "Aciers du Rhône"), ("supplier", "Fonderie Lebrun"),
)
ARCHIVED = ("product", "Pignon Z18 (ancienne série)")
IMMEDIATE = {"fr": "Pièces isolées et étiquetées, tri à 100 % du stock.",
             "en": "Parts quarantined and labelled, 100% sort of the stock."}
WHYS = {"fr": (("Pourquoi l’écart ?", "Réglage dérivé en cours de série"),
               ("Pourquoi la dérive n’a-t-elle pas été vue ?", "Contrôle espacé à 1 pièce/50"),
               ("Pourquoi cet espacement ?", "Plan de contrôle non révisé depuis 2021")),
        "en": (("Why the deviation?", "Setting drifted during the run"),
               ("Why was the drift not seen?", "Checks only every 50 parts"),
               ("Why so few checks?", "Control plan not reviewed since 2021"))}


def _entries() -> list[CatalogEntry]:
    return list(tdb.execute(select(CatalogEntry).order_by(CatalogEntry.id)).scalars())


def ensure_catalog(admin: User) -> None:
    """The demo lists, created by the admin when missing."""
    found = {(e.kind, e.name) for e in _entries()}
    for kind, name in ENTRIES:
        if (kind, name) not in found:
            catalog.add_entry(admin, kind, name)


def archive_old(admin: User) -> None:
    """The old pinion leaves the lists; the records naming it keep it."""
    for entry in _entries():
        if (entry.kind, entry.name) == ARCHIVED and not entry.archived:
            catalog.set_archived(admin, entry, True)


def fields_for(spec: data.Spec, index: int) -> dict[str, Any]:
    """The record fields of a new demo record (by its place in the demo data)."""
    live = [e for e in _entries() if not e.archived]
    items = [e for e in live if e.kind in ("product", "process")]
    parties = [e for e in live if e.kind == spec.origin]  # customer and supplier origins
    fields: dict[str, Any] = {
        "lot": f"{2400 + index % 12:04d}-{index % 9 + 1:02d}",
        "quantity": str(5 + index * 7 % 200),
        "quantity_unit": "pcs" if spec.lang == "en" else "pièces",
        "immediate_action": IMMEDIATE[spec.lang],
        "nq_cost": str(Decimal(150 + index * 173 % 4200) + Decimal("0.50") * (index % 2))}
    if items:
        fields["product"] = items[index % len(items)].id
    if parties:
        fields["partner"] = parties[index % len(parties)].id
    return fields


def analyse(author: User, record: NonConformity, spec: data.Spec, index: int) -> None:
    """The 5 Whys (two or three steps) and main cause, written with the cause analysis."""
    steps = WHYS[spec.lang][: 2 + index % 2]
    values = {f"why_{i}": why for i, (why, _b) in enumerate(steps, 1)}
    values |= {f"because_{i}": because for i, (_w, because) in enumerate(steps, 1)}
    analysis.update_analysis(author, record, main_cause=CAUSE_CATEGORIES[index % 6], **values)
