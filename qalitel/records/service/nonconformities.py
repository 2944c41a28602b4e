"""Writes on non-conformities: create, edit (with history), shares (the workflow is in
:mod:`.workflow`). Flush only: the request or the CLI command commits
(:mod:`qalitel.transaction`)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from qalitel.records import events, visibility
from qalitel.records.models import (
    ORIGINS,
    SEVERITIES,
    TEXT_MAX,
    TITLE_MAX,
    Folder,
    NonConformity,
    RecordHistory,
    RecordShare,
    StatusChange,
)
from qalitel.records.service import concurrency, record_fields
from qalitel.records.service.checks import (
    PermissionDenied,
    RecordError,
    active_user,
    choice,
    lock_writable,
    now,
    same_text,
    text,
    today,
    usable_folder,
    valid_date,
)
from qalitel.users.models import User
from tenants.context import tdb

EDITABLE = ("title", "description", "cause_analysis", "detected_on", "detected_by", "origin",
            "severity", "folder", "assignee") + record_fields.FIELDS
NUMBER_ATTEMPTS = 5


def _display(field: str, value: Any) -> str | None:
    """How a field's value is kept in the history (names, not ids, so it reads later)."""
    if value is None:
        return None
    if field in record_fields.FIELDS:
        return record_fields.display(field, value)
    if field in ("detected_by", "assignee"):
        user = tdb.get(User, value)
        return user.name if user else f"#{value}"
    if field == "folder":
        folder = tdb.get(Folder, value)
        return folder.name if folder else f"#{value}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _insert_numbered(record: NonConformity) -> None:
    """Insert ``record`` with the next number, computed by the INSERT itself. SQLite runs the
    statement under its write lock; on PostgreSQL two writers may take the same number, so
    each attempt runs in a savepoint and a duplicate retries with the next one."""
    next_number = select(func.coalesce(func.max(NonConformity.number), 0) + 1).scalar_subquery()
    if tdb.get_bind().dialect.name != "postgresql":
        record.number = next_number  # type: ignore[assignment]
        tdb.add(record)
        tdb.flush()
        return
    for attempt in range(NUMBER_ATTEMPTS):
        record.number = next_number  # type: ignore[assignment]
        try:
            with tdb.begin_nested():
                tdb.add(record)
        except IntegrityError:
            if attempt == NUMBER_ATTEMPTS - 1:
                raise
            continue
        return


def create_nonconformity(author: User, title: str, description: str = "", *,
                         detected_on: date | None = None, detected_by_id: int | None = None,
                         origin: str = "internal", severity: str = "minor",
                         folder_id: int | None = None, assignee_id: int | None = None,
                         cause_analysis: str = "",
                         fields: dict[str, Any] | None = None) -> NonConformity:
    """Record a non-conformity, detected by ``author`` unless ``detected_by_id`` says who;
    ``fields``: some of :data:`record_fields.FIELDS` (product, lot, cost...)."""
    if fields and set(fields) - set(record_fields.FIELDS):
        raise RecordError(_("Unknown field."))
    values = dict(
        title=text(title, TITLE_MAX, _("Title"), required=True, multiline=False),
        description=text(description, TEXT_MAX, _("Description")),
        cause_analysis=text(cause_analysis, TEXT_MAX, _("Cause analysis")),
        detected_on=valid_date(detected_on, _("Detection date"),
                               not_after=today() + timedelta(1)) or today(),
        origin=choice(origin, ORIGINS, _("Origin")),
        severity=choice(severity, SEVERITIES, _("Severity")),
        **record_fields.new_values(None, fields or {}),
    )
    detected_by = active_user(detected_by_id, _("Detected by")) or author.id
    assignee = active_user(assignee_id, _("Assignee"))
    if not visibility.can_assign(author, None, assignee):
        raise RecordError(_("Assignee: only managers and admins may make themselves the "
                            "assignee of a record."))
    record = NonConformity(status="open", **values, detected_by_id=detected_by,
                           created_by_id=author.id,
                           assignee_id=assignee,
                           folder_id=usable_folder(author, folder_id))
    _insert_numbered(record)
    tdb.add(StatusChange(record_id=record.id, from_status=None, to_status="open",
                         changed_by_id=author.id, changed_at=now()))
    tdb.flush()
    events.assigned(author, record)
    return record


def _new_values(actor: User, record: NonConformity, changes: dict[str, Any]) -> dict[str, Any]:
    """Checked values by attribute; a value equal to the stored one is taken as it is."""
    new: dict[str, Any] = {}
    for name, limit, label in (("title", TITLE_MAX, _("Title")),
                               ("description", TEXT_MAX, _("Description")),
                               ("cause_analysis", TEXT_MAX, _("Cause analysis"))):
        if name in changes and not same_text(changes[name], getattr(record, name)):
            new[name] = text(changes[name], limit, label, required=name == "title",
                             multiline=name != "title")
    if "detected_on" in changes and changes["detected_on"] != record.detected_on:
        new["detected_on"] = valid_date(changes["detected_on"], _("Detection date"),
                                        not_after=today() + timedelta(1)) or record.detected_on
    if "origin" in changes:
        new["origin"] = choice(changes["origin"], ORIGINS, _("Origin"))
    if "severity" in changes:
        new["severity"] = choice(changes["severity"], SEVERITIES, _("Severity"))
    if "detected_by" in changes:
        new["detected_by_id"] = active_user(changes["detected_by"], _("Detected by"),
                                            keep=record.detected_by_id)
    if "assignee" in changes:
        new["assignee_id"] = active_user(changes["assignee"], _("Assignee"),
                                         keep=record.assignee_id)
        if (new["assignee_id"] != record.assignee_id
                and not visibility.can_assign(actor, record, new["assignee_id"])):
            raise PermissionDenied(_("Only managers, admins and the record's assignee may "
                                     "change its assignee."))
    if "folder" in changes and changes["folder"] != record.folder_id:
        if record.folder_id is not None and not visibility.can_see_folder(actor,
                                                                          record.folder_id):
            raise RecordError(_("Only people cleared for its folder may move this record "
                                "to another folder."))
        new["folder_id"] = usable_folder(actor, changes["folder"])
    new.update(record_fields.new_values(record, changes))
    return new


def current_values(record: NonConformity) -> dict[str, Any]:
    """The :data:`EDITABLE` fields of ``record`` as an edit form holds them."""
    return {field: getattr(record, f"{field}_id" if field in ("detected_by", "folder",
                                                              "assignee") else field)
            for field in EDITABLE if field not in record_fields.FIELDS
            } | record_fields.current(record)


def record_version(record: NonConformity) -> str:
    """The version an edit form built from ``record`` now carries (:mod:`.concurrency`)."""
    return concurrency.version_of(EDITABLE, current_values(record))


def update_nonconformity(actor: User, record: NonConformity, *, version: str | None = None,
                         **changes: Any) -> list[str]:
    """Change some of :data:`EDITABLE` fields; returns the names of those that changed.

    With ``version`` (an edit form's), only the fields changed since that version are
    written, and :class:`~.concurrency.EditConflict` is raised, nothing saved, when the row
    changed in one of them meanwhile."""
    if not visibility.can_edit_record(actor, record):
        raise PermissionDenied()
    lock_writable(record)
    if set(changes) - set(EDITABLE):
        raise RecordError(_("Unknown field."))
    if version is not None:
        changes = concurrency.merge(EDITABLE, version, changes, current_values(record))
    changed = []
    for attribute, value in _new_values(actor, record, changes).items():
        old = getattr(record, attribute)
        if old == value:
            continue
        field = attribute.removesuffix("_id")
        refs = {"old_ref": old, "new_ref": value} if field == "folder" else {}
        tdb.add(RecordHistory(record_id=record.id, user_id=actor.id, changed_at=now(),
                              field=field, old_value=_display(field, old),
                              new_value=_display(field, value), **refs))
        setattr(record, attribute, value)
        changed.append(field)
    tdb.flush()
    if "assignee" in changed:
        events.assigned(actor, record)
    return changed


def share_record(actor: User, record: NonConformity, user_id: int) -> bool:
    """Let one more user read the record; False when it was already shared with them."""
    if not visibility.can_edit_record(actor, record):
        raise PermissionDenied()
    lock_writable(record)
    uid = active_user(user_id, _("User"))
    if uid is None:
        raise RecordError(_("User: unknown or suspended user."))
    if tdb.get(RecordShare, (record.id, uid)) is not None:
        return False
    user = tdb.get(User, uid)
    tdb.add(RecordShare(record_id=record.id, user_id=uid, shared_by_id=actor.id,
                        shared_at=now()))
    tdb.add(RecordHistory(record_id=record.id, user_id=actor.id, changed_at=now(),
                          field="shared_with", old_value=None,
                          new_value=user.name if user else None))
    tdb.flush()
    return True


def unshare_record(actor: User, record: NonConformity, user_id: int) -> bool:
    if not visibility.can_edit_record(actor, record):
        raise PermissionDenied()
    lock_writable(record)
    share = tdb.get(RecordShare, (record.id, user_id))
    if share is None:
        return False
    user = tdb.get(User, user_id)
    tdb.delete(share)
    tdb.add(RecordHistory(record_id=record.id, user_id=actor.id, changed_at=now(),
                          field="shared_with", old_value=user.name if user else None,
                          new_value=None))
    tdb.flush()
    return True
