"""Labels of the record fields, list kinds and cause categories (lazy: translated when shown)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from qalitel.records.field_models import CAUSE_CATEGORIES, WHY_STEPS

CATALOG_KIND_LABELS = {"product": _l("Product"), "process": _l("Process"),
                       "customer": _l("Customer"), "supplier": _l("Supplier")}
CATALOG_LIST_LABELS = {"product": _l("Products"), "process": _l("Processes"),
                       "customer": _l("Customers"), "supplier": _l("Suppliers")}
CAUSE_LABELS = {"method": _l("Method"), "machine": _l("Machine"), "material": _l("Material"),
                "manpower": _l("Manpower"), "measurement": _l("Measurement"),
                "environment": _l("Environment")}
FIELD_LABELS = {
    "product": _l("Product or process"), "lot": _l("Lot"), "quantity": _l("Quantity"),
    "quantity_unit": _l("Unit"), "partner": _l("Customer or supplier"),
    "immediate_action": _l("Immediate action"), "nq_cost": _l("Cost of non-quality"),
    "main_cause": _l("Main cause category"),
    **{f"why_{i}": _l("Why %(num)d", num=i) for i in range(1, WHY_STEPS + 1)},
    **{f"because_{i}": _l("Answer %(num)d", num=i) for i in range(1, WHY_STEPS + 1)},
    **{f"ishikawa_{c}": _l("Ishikawa: %(category)s", category=CAUSE_LABELS[c])
       for c in CAUSE_CATEGORIES},
}


def field_label(name: str):
    return FIELD_LABELS[name]
