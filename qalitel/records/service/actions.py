"""Writes on actions: create (on a record or standalone), edit, the planned effectiveness
check (date, criteria) and its result. An action of a closed or unfounded record is
read-only. Flush only: the request or the CLI command commits."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_babel import gettext as _

from qalitel.records import events, visibility
from qalitel.records.models import (
    ACTION_KINDS,
    ACTION_STATUSES,
    COMMENT_MAX,
    TEXT_MAX,
    TITLE_MAX,
    Action,
    NonConformity,
    RecordHistory,
)
from qalitel.records.service import concurrency
from qalitel.records.service.checks import (
    PermissionDenied,
    RecordError,
    active_user,
    choice,
    lock_writable,
    now,
    same_text,
    text,
    valid_date,
)
from qalitel.users.models import User
from tenants.context import tdb

ACTION_FIELDS = ("title", "description", "kind", "status", "due_date", "owner",
                 "effectiveness_due_on", "effectiveness_criteria")


def _values(changes: dict[str, Any], action: Action | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, limit, label in (("title", TITLE_MAX, _("Title")),
                               ("description", TEXT_MAX, _("Description"))):
        if name in changes and not (action is not None
                                    and same_text(changes[name], getattr(action, name))):
            out[name] = text(changes[name], limit, label, required=name == "title",
                             multiline=name != "title")
    if "kind" in changes:
        out["kind"] = choice(changes["kind"], ACTION_KINDS, _("Type"))
    if "status" in changes:
        out["status"] = choice(changes["status"], ACTION_STATUSES, _("Status"))
    if "due_date" in changes and (action is None or changes["due_date"] != action.due_date):
        out["due_date"] = valid_date(changes["due_date"], _("Due date"))
    if "owner" in changes:
        out["owner_id"] = active_user(changes["owner"], _("Owner"),
                                      keep=action.owner_id if action else None)
    if "effectiveness_due_on" in changes and (
            action is None or changes["effectiveness_due_on"] != action.effectiveness_due_on):
        out["effectiveness_due_on"] = valid_date(changes["effectiveness_due_on"],
                                                 _("Effectiveness check planned on"))
    criteria = changes.get("effectiveness_criteria")
    if "effectiveness_criteria" in changes and not (
            action is not None and same_text(criteria, action.effectiveness_criteria or "")):
        out["effectiveness_criteria"] = text(criteria, COMMENT_MAX,
                                             _("Effectiveness criteria")) or None
    return out


def create_action(actor: User, title: str, *, record: NonConformity | None = None,
                  kind: str = "corrective", description: str = "", owner_id: int | None = None,
                  due_date: date | None = None, status: str = "planned",
                  effectiveness_due_on: date | None = None,
                  effectiveness_criteria: str = "") -> Action:
    """A new action, on ``record`` (which ``actor`` must be allowed to edit, and which must
    not be closed) or standalone."""
    if record is not None and not visibility.can_edit_record(actor, record):
        raise PermissionDenied()
    if record is not None:
        lock_writable(record)
    values = _values(dict(title=title, kind=kind, description=description,
                          owner=owner_id if owner_id is not None else actor.id,
                          due_date=due_date, status=status,
                          effectiveness_due_on=effectiveness_due_on,
                          effectiveness_criteria=effectiveness_criteria))
    action = Action(record_id=record.id if record else None, created_by_id=actor.id, **values)
    if action.status == "done":
        action.completed_at = now()
    tdb.add(action)
    tdb.flush()
    events.assigned(actor, action)
    return action


def action_values(action: Action) -> dict[str, Any]:
    """The :data:`ACTION_FIELDS` of ``action`` as an edit form holds them."""
    values = {field: getattr(action, "owner_id" if field == "owner" else field)
              for field in ACTION_FIELDS}
    values["effectiveness_criteria"] = action.effectiveness_criteria or ""
    return values


def action_version(action: Action) -> str:
    """The version an edit form built from ``action`` now carries (:mod:`.concurrency`)."""
    return concurrency.version_of(ACTION_FIELDS, action_values(action))


def update_action(actor: User, action: Action, *, version: str | None = None,
                  **changes: Any) -> list[str]:
    """Change some of :data:`ACTION_FIELDS`; returns the names of the attributes changed.
    ``version``: as for :func:`~.nonconformities.update_nonconformity`."""
    if not visibility.can_edit_action(actor, action):
        raise PermissionDenied()
    lock_writable(action)
    if set(changes) - set(ACTION_FIELDS):
        raise RecordError(_("Unknown field."))
    if version is not None:
        changes = concurrency.merge(ACTION_FIELDS, version, changes, action_values(action))
    values = _values(changes, action)
    if values.get("status") == "done" and action.status != "done":
        action.completed_at = now()
    elif "status" in values and values["status"] != "done":
        action.completed_at = None
        if action.status == "done" and action.effective:
            _withdraw_verdict(actor, action)
    changed = [name for name, value in values.items() if getattr(action, name) != value]
    for attribute in changed:
        setattr(action, attribute, values[attribute])
    tdb.flush()
    if "owner_id" in changed:
        events.assigned(actor, action)
    return changed


def _withdraw_verdict(actor: User, action: Action) -> None:
    """An action judged effective leaves "done" (reworked, cancelled): the verdict no longer
    proves anything, so it must be checked again, and its record's history says so. A
    verdict of not effective stays: it is still the last word until a new check."""
    if action.record_id is not None:
        tdb.add(RecordHistory(
            record_id=action.record_id, user_id=actor.id, changed_at=now(),
            field="effectiveness", old_value=_("“%(title)s”: effective", title=action.title),
            new_value=_("“%(title)s”: to be checked again", title=action.title)))
    action.effective = None
    action.effectiveness_comment = ""
    action.effectiveness_checked_by_id = None
    action.effectiveness_checked_at = None


def check_effectiveness(actor: User, action: Action, effective: bool, comment: str = "") -> None:
    """Record whether a finished action worked."""
    if not visibility.can_check_effectiveness(actor):
        raise PermissionDenied()
    lock_writable(action)
    if action.status != "done":
        raise RecordError(_("Only a finished action can be checked for effectiveness."))
    action.effective = bool(effective)
    action.effectiveness_comment = text(comment, COMMENT_MAX, _("Comment"))
    action.effectiveness_checked_by_id = actor.id
    action.effectiveness_checked_at = now()
    tdb.flush()
