"""The structured cause analysis of a record (5 Whys, Ishikawa grid, main cause): read and
edited with the record's own rights, every changed field kept in the record's history.
Flush only: the request commits."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from qalitel.records import visibility
from qalitel.records.field_labels import field_label
from qalitel.records.field_models import (
    ANALYSIS_FIELDS,
    BRANCH_MAX,
    CAUSE_CATEGORIES,
    ISHIKAWA_FIELDS,
    STEP_MAX,
    WHY_FIELDS,
    RecordAnalysis,
)
from qalitel.records.models import NonConformity, RecordHistory
from qalitel.records.service import concurrency
from qalitel.records.service.checks import (
    PermissionDenied,
    RecordError,
    choice,
    lock_writable,
    now,
    same_text,
    text,
)
from qalitel.users.models import User
from tenants.context import tdb


def of(record: NonConformity) -> RecordAnalysis | None:
    return tdb.get(RecordAnalysis, record.id)


def current(record: NonConformity) -> dict[str, Any]:
    """The analysis as its form holds it (empty texts and no main cause when there is none)."""
    return values_of(of(record))


def values_of(analysis: RecordAnalysis | None) -> dict[str, Any]:
    """:func:`current` of an analysis row already read (None: there is none)."""
    return {name: getattr(analysis, name) if analysis is not None
            else (None if name == "main_cause" else "") for name in ANALYSIS_FIELDS}


def version(record: NonConformity) -> str:
    return concurrency.version_of(ANALYSIS_FIELDS, current(record))


def is_empty(values: dict[str, Any]) -> bool:
    return not any(values.values())


def label(name: str) -> str:
    """The field's label, e.g. "Why 2", "Answer 2", "Ishikawa: machine"."""
    return str(field_label(name))


def _checked(name: str, value: Any, stored: Any) -> Any:
    if name == "main_cause":
        return None if value in (None, "") else choice(value, CAUSE_CATEGORIES, label(name))
    if same_text(value, stored):
        return stored
    limit = STEP_MAX if name in WHY_FIELDS else BRANCH_MAX
    assert name in WHY_FIELDS or name in ISHIKAWA_FIELDS
    return text(value, limit, label(name))


def update_analysis(actor: User, record: NonConformity, *, version: str | None = None,
                    **changes: Any) -> list[str]:
    """Change some of :data:`ANALYSIS_FIELDS`; returns the names of those that changed.
    ``version``: as for :func:`~qalitel.records.service.update_nonconformity`."""
    if not visibility.can_edit_record(actor, record):
        raise PermissionDenied()
    lock_writable(record)
    if set(changes) - set(ANALYSIS_FIELDS):
        raise RecordError(_("Unknown field."))
    stored = current(record)
    if version is not None:
        changes = concurrency.merge(ANALYSIS_FIELDS, version, changes, stored)
    values = {name: _checked(name, value, stored[name]) for name, value in changes.items()}
    changed = [name for name, value in values.items() if value != stored[name]]
    if not changed:
        return []
    analysis = of(record)
    if analysis is None:
        analysis = RecordAnalysis(record_id=record.id)
        tdb.add(analysis)
    moment = now()
    for name in changed:
        tdb.add(RecordHistory(record_id=record.id, user_id=actor.id, changed_at=moment,
                              field=name, old_value=stored[name] or None,
                              new_value=values[name] or None))
        setattr(analysis, name, values[name])
    analysis.updated_at = moment
    tdb.flush()
    return changed
