"""The page answering an edit conflict (409): the form rebuilt from the current row, with
the person's other changes kept, and what they had typed in the fields that conflict."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from flask import flash
from flask_babel import gettext as _

from core import dates
from qalitel.records.service.concurrency import EditConflict


def merged_data(current: Mapping[str, Any], conflict: EditConflict,
                attributes: Mapping[str, str]) -> dict[str, Any]:
    """Form data (by form attribute): the current values, plus the person's changes to the
    fields nobody else changed."""
    data = {attributes.get(name, name): value for name, value in current.items()}
    for name, value in conflict.changed.items():
        if name not in conflict.fields:
            data[attributes.get(name, name)] = value
    return data


def _shown(field: Any, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, date):
        return dates.date_text(value)
    for choice in getattr(field, "choices", None) or ():
        if choice.value == str(value):
            return str(choice.label)
    return str(value)


def announce(form: Any, conflict: EditConflict,
             attributes: Mapping[str, str]) -> list[tuple[str, str]]:
    """Flash the conflict; returns (label, the person's value) for each conflicting field."""
    yours = [(str(form[attributes.get(name, name)].label.text),
              _shown(form[attributes.get(name, name)], conflict.changed[name]))
             for name in conflict.fields]
    flash(_("%(fields)s: changed by someone else since you opened this form. Here is the "
            "current version, with your other changes; check it and save again.",
            fields=", ".join(label for label, _value in yours)), "error")
    return yours
