"""Writes on quality records: non-conformities, their workflow and shares, actions, folders.

Every function checks what it is given (lengths, enumerations, dates, that referenced users
and folders exist and may be used) and who asks, so a view that forgot a check cannot save
bad data. Failures raise :class:`RecordError` (a message for the person) or
:class:`PermissionDenied`. Each function commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Row, delete, func, select
from sqlalchemy.exc import IntegrityError

from qalitel.records import visibility
from qalitel.records.models import (
    ACTION_CLOSED,
    ACTION_KINDS,
    ACTION_STATUSES,
    COMMENT_MAX,
    FOLDER_NAME_MAX,
    ORIGINS,
    SEVERITIES,
    TEXT_MAX,
    TITLE_MAX,
    TRANSITIONS,
    Action,
    Folder,
    FolderClearance,
    NonConformity,
    RecordHistory,
    RecordShare,
    StatusChange,
)
from qalitel.users.models import Group, User
from tenants.context import tdb

EARLIEST = date(1970, 1, 1)
LATEST = date(2199, 12, 31)


class RecordError(ValueError):
    """Input that cannot be saved; the message is meant for the person who sent it."""


class PermissionDenied(PermissionError):
    """The person may see the object but not make this change."""


def _now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return _now().date()


# ------------------------------------------------------------------ checks


def _text(value: str | None, limit: int, label: str, *, required: bool = False) -> str:
    cleaned = (value or "").strip()
    if required and not cleaned:
        raise RecordError(_("%(field)s is required.", field=label))
    if len(cleaned) > limit:
        raise RecordError(_("%(field)s is too long (at most %(max)d characters).",
                            field=label, max=limit))
    if "\x00" in cleaned:
        raise RecordError(_("%(field)s contains a forbidden character.", field=label))
    return cleaned


def _choice(value: str, allowed: Iterable[str], label: str) -> str:
    if value not in tuple(allowed):
        raise RecordError(_("%(field)s: not a valid choice.", field=label))
    return value


def _date(value: date | None, label: str, *, not_after: date | None = None) -> date | None:
    if value is None:
        return None
    if not isinstance(value, date) or not EARLIEST <= value <= LATEST:
        raise RecordError(_("%(field)s: not a valid date.", field=label))
    if not_after is not None and value > not_after:
        raise RecordError(_("%(field)s cannot be in the future.", field=label))
    return value


def _active_user(user_id: int | None, label: str) -> User | None:
    if user_id is None:
        return None
    user = tdb.get(User, user_id)
    if user is None or user.is_suspended:
        raise RecordError(_("%(field)s: unknown or suspended user.", field=label))
    return user


def _usable_folder(actor: User, folder_id: int | None) -> Folder | None:
    if folder_id is None:
        return None
    folder = tdb.execute(select(Folder).where(
        Folder.id == folder_id, visibility.folder_visibility(actor))).scalar_one_or_none()
    if folder is None:
        raise RecordError(_("Folder: not a valid choice."))
    return folder


def assignable_users() -> list[Row]:
    """(id, name) of the tenant's active users, by name: choices for assignee, owner, share."""
    return list(tdb.execute(select(User.id, User.name).where(User.suspended_at.is_(None))
                            .order_by(func.lower(User.name), User.id)).all())


def usable_folders(user: User) -> list[Folder]:
    return list(tdb.execute(select(Folder).where(visibility.folder_visibility(user))
                            .order_by(func.lower(Folder.name))).scalars())


def folder_choices(user: User) -> list[Row]:
    """(id, name) of the folders ``user`` may see and file records in, by name."""
    return list(tdb.execute(select(Folder.id, Folder.name)
                            .where(visibility.folder_visibility(user))
                            .order_by(func.lower(Folder.name))).all())


# ------------------------------------------------------------------ non-conformities


def next_number() -> int:
    return (tdb.execute(select(func.max(NonConformity.number))).scalar() or 0) + 1


def _display(field: str, value: Any) -> str | None:
    """How a field's value is kept in the history (names, not ids, so it reads later)."""
    if value is None:
        return None
    if field in ("detected_by", "assignee"):
        user = tdb.get(User, value)
        return user.name if user else f"#{value}"
    if field == "folder":
        folder = tdb.get(Folder, value)
        return folder.name if folder else f"#{value}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def create_nonconformity(author: User, title: str, description: str = "", *,
                         detected_on: date | None = None, detected_by_id: int | None = None,
                         origin: str = "internal", severity: str = "minor",
                         folder_id: int | None = None, assignee_id: int | None = None,
                         cause_analysis: str = "") -> NonConformity:
    """Record a non-conformity, detected by ``author`` unless ``detected_by_id`` says who."""
    values = dict(
        title=_text(title, TITLE_MAX, _("Title"), required=True),
        description=_text(description, TEXT_MAX, _("Description")),
        cause_analysis=_text(cause_analysis, TEXT_MAX, _("Cause analysis")),
        detected_on=_date(detected_on, _("Detection date"), not_after=today() + timedelta(1))
        or today(),
        origin=_choice(origin, ORIGINS, _("Origin")),
        severity=_choice(severity, SEVERITIES, _("Severity")),
    )
    detected_by = _active_user(detected_by_id, _("Detected by")) or author
    assignee = _active_user(assignee_id, _("Assignee"))
    folder = _usable_folder(author, folder_id)
    for attempt in range(5):
        record = NonConformity(number=next_number(), status="open", **values,
                               detected_by_id=detected_by.id, created_by_id=author.id,
                               assignee_id=assignee.id if assignee else None,
                               folder_id=folder.id if folder else None)
        tdb.add(record)
        try:
            tdb.flush()
        except IntegrityError:  # two writers took the same number: take the next one
            tdb.rollback()
            if attempt == 4:
                raise
            continue
        break
    tdb.add(StatusChange(record_id=record.id, from_status=None, to_status="open",
                         changed_by_id=author.id, changed_at=_now()))
    tdb.commit()
    return record


EDITABLE = ("title", "description", "cause_analysis", "detected_on", "detected_by", "origin",
            "severity", "folder", "assignee")


def update_nonconformity(actor: User, record: NonConformity, **changes: Any) -> list[str]:
    """Change some of :data:`EDITABLE` fields; returns the names of those that changed."""
    if not visibility.can_edit_record(actor, record):
        raise PermissionDenied()
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise RecordError(_("Unknown field."))
    new: dict[str, Any] = {}
    if "title" in changes:
        new["title"] = _text(changes["title"], TITLE_MAX, _("Title"), required=True)
    if "description" in changes:
        new["description"] = _text(changes["description"], TEXT_MAX, _("Description"))
    if "cause_analysis" in changes:
        new["cause_analysis"] = _text(changes["cause_analysis"], TEXT_MAX, _("Cause analysis"))
    if "detected_on" in changes:
        new["detected_on"] = _date(changes["detected_on"], _("Detection date"),
                                   not_after=today() + timedelta(1)) or record.detected_on
    if "origin" in changes:
        new["origin"] = _choice(changes["origin"], ORIGINS, _("Origin"))
    if "severity" in changes:
        new["severity"] = _choice(changes["severity"], SEVERITIES, _("Severity"))
    if "detected_by" in changes:
        user = _active_user(changes["detected_by"], _("Detected by"))
        new["detected_by_id"] = user.id if user else None
    if "assignee" in changes:
        user = _active_user(changes["assignee"], _("Assignee"))
        new["assignee_id"] = user.id if user else None
    if "folder" in changes and changes["folder"] != record.folder_id:
        folder = _usable_folder(actor, changes["folder"])
        new["folder_id"] = folder.id if folder else None
    changed = []
    for attribute, value in new.items():
        old = getattr(record, attribute)
        if old == value:
            continue
        field = attribute.removesuffix("_id")
        tdb.add(RecordHistory(record_id=record.id, user_id=actor.id, changed_at=_now(),
                              field=field, old_value=_display(field, old),
                              new_value=_display(field, value)))
        setattr(record, attribute, value)
        changed.append(field)
    tdb.commit()
    return changed


def change_status(actor: User, record: NonConformity, to_status: str,
                  comment: str = "") -> StatusChange:
    """Move a record one step along :data:`TRANSITIONS`, keeping who and when."""
    if not visibility.can_change_status(actor, record):
        raise PermissionDenied()
    comment = _text(comment, COMMENT_MAX, _("Comment"))
    if to_status not in TRANSITIONS.get(record.status, ()):
        raise RecordError(_("This record cannot move from this status to that one."))
    if to_status == "treatment" and not record.cause_analysis.strip():
        raise RecordError(_("Write the cause analysis before moving to treatment."))
    if to_status == "closed":
        open_actions = tdb.execute(select(func.count()).select_from(Action).where(
            Action.record_id == record.id, Action.status.notin_(ACTION_CLOSED))).scalar()
        if open_actions:
            raise RecordError(_("Finish or cancel every action of this record before "
                                "closing it."))
    step = StatusChange(record_id=record.id, from_status=record.status, to_status=to_status,
                        changed_by_id=actor.id, changed_at=_now(), comment=comment)
    tdb.add(step)
    tdb.add(RecordHistory(record_id=record.id, user_id=actor.id, changed_at=step.changed_at,
                          field="status", old_value=record.status, new_value=to_status))
    record.status = to_status
    tdb.commit()
    return step


def share_record(actor: User, record: NonConformity, user_id: int) -> bool:
    """Let one more user read the record; False when it was already shared with them."""
    if not visibility.can_edit_record(actor, record):
        raise PermissionDenied()
    user = _active_user(user_id, _("User"))
    assert user is not None
    if tdb.get(RecordShare, (record.id, user.id)) is not None:
        return False
    tdb.add(RecordShare(record_id=record.id, user_id=user.id, shared_by_id=actor.id,
                        shared_at=_now()))
    tdb.add(RecordHistory(record_id=record.id, user_id=actor.id, changed_at=_now(),
                          field="shared_with", old_value=None, new_value=user.name))
    tdb.commit()
    return True


def unshare_record(actor: User, record: NonConformity, user_id: int) -> bool:
    if not visibility.can_edit_record(actor, record):
        raise PermissionDenied()
    share = tdb.get(RecordShare, (record.id, user_id))
    if share is None:
        return False
    user = tdb.get(User, user_id)
    tdb.delete(share)
    tdb.add(RecordHistory(record_id=record.id, user_id=actor.id, changed_at=_now(),
                          field="shared_with", old_value=user.name if user else None,
                          new_value=None))
    tdb.commit()
    return True


# ------------------------------------------------------------------ actions


def _action_values(changes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "title" in changes:
        out["title"] = _text(changes["title"], TITLE_MAX, _("Title"), required=True)
    if "description" in changes:
        out["description"] = _text(changes["description"], TEXT_MAX, _("Description"))
    if "kind" in changes:
        out["kind"] = _choice(changes["kind"], ACTION_KINDS, _("Type"))
    if "status" in changes:
        out["status"] = _choice(changes["status"], ACTION_STATUSES, _("Status"))
    if "due_date" in changes:
        out["due_date"] = _date(changes["due_date"], _("Due date"))
    if "owner" in changes:
        owner = _active_user(changes["owner"], _("Owner"))
        out["owner_id"] = owner.id if owner else None
    return out


def create_action(actor: User, title: str, *, record: NonConformity | None = None,
                  kind: str = "corrective", description: str = "", owner_id: int | None = None,
                  due_date: date | None = None, status: str = "planned") -> Action:
    """A new action, on ``record`` (which ``actor`` must be allowed to edit) or standalone."""
    if record is not None and not visibility.can_edit_record(actor, record):
        raise PermissionDenied()
    values = _action_values(dict(title=title, kind=kind, description=description,
                                 owner=owner_id if owner_id is not None else actor.id,
                                 due_date=due_date, status=status))
    action = Action(record_id=record.id if record else None, created_by_id=actor.id, **values)
    if action.status == "done":
        action.completed_at = _now()
    tdb.add(action)
    tdb.commit()
    return action


def update_action(actor: User, action: Action, **changes: Any) -> None:
    if not visibility.can_edit_action(actor, action):
        raise PermissionDenied()
    unknown = set(changes) - {"title", "description", "kind", "status", "due_date", "owner"}
    if unknown:
        raise RecordError(_("Unknown field."))
    values = _action_values(changes)
    if values.get("status") == "done" and action.status != "done":
        action.completed_at = _now()
    elif "status" in values and values["status"] != "done":
        action.completed_at = None
    for attribute, value in values.items():
        setattr(action, attribute, value)
    tdb.commit()


def check_effectiveness(actor: User, action: Action, effective: bool, comment: str = "") -> None:
    """Record whether a finished action worked."""
    if not visibility.can_check_effectiveness(actor):
        raise PermissionDenied()
    if action.status != "done":
        raise RecordError(_("Only a finished action can be checked for effectiveness."))
    action.effective = bool(effective)
    action.effectiveness_comment = _text(comment, COMMENT_MAX, _("Comment"))
    action.effectiveness_checked_by_id = actor.id
    action.effectiveness_checked_at = _now()
    tdb.commit()


# ------------------------------------------------------------------ folders


def _folder_name(name: str, exclude_id: int | None = None) -> str:
    cleaned = _text(name, FOLDER_NAME_MAX, _("Name"), required=True)
    query = select(Folder.id).where(func.lower(Folder.name) == cleaned.lower())
    if exclude_id is not None:
        query = query.where(Folder.id != exclude_id)
    if tdb.execute(query).first() is not None:
        raise RecordError(_("A folder with this name exists already."))
    return cleaned


def create_folder(actor: User, name: str, confidential: bool = False) -> Folder:
    """A new folder; whoever creates a confidential folder is cleared for it."""
    if not visibility.can_manage_folders(actor):
        raise PermissionDenied()
    folder = Folder(name=_folder_name(name), confidential=bool(confidential),
                    created_by_id=actor.id, created_at=_now())
    tdb.add(folder)
    tdb.flush()
    if folder.confidential and not visibility.is_admin(actor):
        tdb.add(FolderClearance(folder_id=folder.id, user_id=actor.id, granted_by_id=actor.id,
                                granted_at=_now()))
    tdb.commit()
    return folder


def _managed_folder(actor: User, folder: Folder) -> None:
    if not visibility.can_manage_folders(actor):
        raise PermissionDenied()
    visible = tdb.execute(select(Folder.id).where(
        Folder.id == folder.id, visibility.folder_visibility(actor))).first()
    if visible is None:
        raise PermissionDenied()


def update_folder(actor: User, folder: Folder, name: str, confidential: bool) -> None:
    _managed_folder(actor, folder)
    folder.name = _folder_name(name, exclude_id=folder.id)
    if confidential and not folder.confidential and not visibility.is_admin(actor):
        exists = tdb.execute(select(FolderClearance.id).where(
            FolderClearance.folder_id == folder.id, FolderClearance.user_id == actor.id)).first()
        if exists is None:
            tdb.add(FolderClearance(folder_id=folder.id, user_id=actor.id,
                                    granted_by_id=actor.id, granted_at=_now()))
    folder.confidential = bool(confidential)
    tdb.commit()


def grant_clearance(actor: User, folder: Folder, *, user_id: int | None = None,
                    group_id: int | None = None) -> bool:
    """Clear one manager, or every member of one group, for ``folder``."""
    _managed_folder(actor, folder)
    if (user_id is None) == (group_id is None):
        raise RecordError(_("Choose a user or a group."))
    if user_id is not None:
        _active_user(user_id, _("User"))
        where = FolderClearance.user_id == user_id
    else:
        if tdb.get(Group, group_id) is None:
            raise RecordError(_("Group: not a valid choice."))
        where = FolderClearance.group_id == group_id
    if tdb.execute(select(FolderClearance.id).where(
            FolderClearance.folder_id == folder.id, where)).first() is not None:
        return False
    tdb.add(FolderClearance(folder_id=folder.id, user_id=user_id, group_id=group_id,
                            granted_by_id=actor.id, granted_at=_now()))
    tdb.commit()
    return True


def revoke_clearance(actor: User, folder: Folder, clearance_id: int) -> bool:
    _managed_folder(actor, folder)
    result = tdb.execute(delete(FolderClearance).where(FolderClearance.id == clearance_id,
                                                       FolderClearance.folder_id == folder.id))
    tdb.commit()
    return bool(result.rowcount)
