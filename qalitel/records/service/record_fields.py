"""The descriptive fields of a non-conformity (:mod:`qalitel.records.fields`): their checks
on create and edit, how an edit form holds them and how the history keeps them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask_babel import gettext as _

from qalitel.records.field_models import (
    COST_MAX,
    ITEM_KINDS,
    LOT_MAX,
    PARTY_KINDS,
    QUANTITY_MAX,
    UNIT_MAX,
    CatalogEntry,
    plain_number,
)
from qalitel.records.models import TEXT_MAX, NonConformity
from qalitel.records.service.checks import amount, catalog_entry, same_text, text
from tenants.context import tdb

FIELDS = ("product", "lot", "quantity", "quantity_unit", "partner", "immediate_action",
          "nq_cost")
REFERENCES = ("product", "partner")


def _labels() -> dict[str, str]:
    return {"product": _("Product or process"), "lot": _("Lot"), "quantity": _("Quantity"),
            "quantity_unit": _("Unit"), "partner": _("Customer or supplier"),
            "immediate_action": _("Immediate action"), "nq_cost": _("Cost of non-quality")}


def plain(value: Decimal | None) -> str:
    return plain_number(value)


def plain_cost(value: Decimal | None) -> str:
    return plain_number(value, 2)


def new_values(record: NonConformity | None, changes: dict[str, Any]) -> dict[str, Any]:
    """Checked values by attribute for the fields of :data:`FIELDS` in ``changes``."""
    labels = _labels()
    out: dict[str, Any] = {}
    for name, limit, multiline in (("lot", LOT_MAX, False), ("quantity_unit", UNIT_MAX, False),
                                   ("immediate_action", TEXT_MAX, True)):
        if name in changes and not (record is not None
                                    and same_text(changes[name], getattr(record, name))):
            out[name] = text(changes[name], limit, labels[name], multiline=multiline)
    if "quantity" in changes:
        out["quantity"] = amount(changes["quantity"], labels["quantity"], places=3,
                                 maximum=QUANTITY_MAX,
                                 keep=record.quantity if record is not None else None)
    if "nq_cost" in changes:
        out["nq_cost"] = amount(changes["nq_cost"], labels["nq_cost"], places=2,
                                maximum=COST_MAX,
                                keep=record.nq_cost if record is not None else None)
    for name, kinds in (("product", ITEM_KINDS), ("partner", PARTY_KINDS)):
        if name in changes:
            out[f"{name}_id"] = catalog_entry(
                changes[name], kinds, labels[name],
                keep=getattr(record, f"{name}_id") if record is not None else None)
    return out


def current(record: NonConformity) -> dict[str, Any]:
    """The fields as an edit form holds them (decimals as the form shows them)."""
    return {"product": record.product_id, "lot": record.lot, "quantity": plain(record.quantity),
            "quantity_unit": record.quantity_unit, "partner": record.partner_id,
            "immediate_action": record.immediate_action, "nq_cost": plain_cost(record.nq_cost)}


def display(field: str, value: Any) -> str | None:
    """How the history keeps one of these fields (a list entry by name)."""
    if field in REFERENCES:
        entry = tdb.get(CatalogEntry, value)
        return entry.name if entry else f"#{value}"
    if field == "nq_cost":
        return plain_cost(value)
    if isinstance(value, Decimal):
        return plain(value)
    return str(value)
