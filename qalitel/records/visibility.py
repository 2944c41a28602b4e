"""Who sees which record, action and folder — the one place that decides it.

Every query that reads records or actions for a person (list, detail, search, CSV export,
dashboard counts, action lists, forms' choices) adds the ``where`` clause built here;
templates never filter. The rules, by profile (``users.models.Profile``):

* **user** — sees a record that concerns them by name: they detected it, wrote it, are its
  assignee, own one of its actions, or it was shared with them. This holds even in a
  confidential folder: whoever named them there had access and chose to involve them.
* **manager** — sees every record outside confidential folders, plus the confidential
  folders they are cleared for (``FolderClearance`` of the user or of one of their groups),
  plus whatever concerns them by name as for a user.
* **admin** (client admin) — manages the users, so is treated as a manager cleared for
  every folder: sees every record.

An action is visible with its record; a standalone action is visible to its owner and its
author, and to managers and admins. An action owner also sees the action's record.

Who may move a record along the workflow follows the tenant's rules
(:mod:`qalitel.records.rules`): each move is allowed to roles, ``manager`` (managers and
admins) and ``assignee`` (the record's assignee).
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import ColumnElement, Select, case, false, null, or_, select, true

from qalitel.records.models import (
    Action,
    Folder,
    FolderClearance,
    NonConformity,
    RecordShare,
)
from qalitel.records.rules import Rules, workflow_rules
from qalitel.users.models import Profile, User, UserGroup
from tenants.context import tdb


def _profile(user: User) -> Profile:
    return Profile(user.profile)


def is_manager(user: User) -> bool:
    """Managers and admins: broad read access, workflow and folder administration."""
    return _profile(user) in (Profile.MANAGER, Profile.ADMIN)


def is_admin(user: User) -> bool:
    return _profile(user) is Profile.ADMIN


def cleared_folder_ids(user: User) -> Select:
    """Ids of the confidential folders ``user`` is cleared for, directly or by a group."""
    groups = select(UserGroup.group_id).where(UserGroup.user_id == user.id)
    return select(FolderClearance.folder_id).where(
        or_(FolderClearance.user_id == user.id, FolderClearance.group_id.in_(groups)))


def folder_visibility(user: User) -> ColumnElement[bool]:
    """``where`` clause on :class:`Folder`: the folders ``user`` sees and may file records in
    (every non-confidential folder, and the confidential ones they are cleared for)."""
    if is_admin(user):
        return true()
    return or_(Folder.confidential.is_(false()), Folder.id.in_(cleared_folder_ids(user)))


def concerns(user: User) -> ColumnElement[bool]:
    """``where`` clause on :class:`NonConformity`: records naming ``user``."""
    uid = user.id
    # Non-correlated IN subqueries: each is computed once per query (not once per row), and
    # every term can use an index, so the planner can union index lookups.
    return or_(
        NonConformity.detected_by_id == uid,
        NonConformity.assignee_id == uid,
        NonConformity.created_by_id == uid,
        NonConformity.id.in_(select(RecordShare.record_id).where(RecordShare.user_id == uid)),
        NonConformity.id.in_(select(Action.record_id).where(
            Action.owner_id == uid, Action.record_id.is_not(None))),
    )


def record_visibility(user: User) -> ColumnElement[bool]:
    """``where`` clause on :class:`NonConformity`: the records ``user`` may see."""
    if is_admin(user):
        return true()
    if not is_manager(user):
        return concerns(user)
    open_folders = select(Folder.id).where(folder_visibility(user))
    return or_(NonConformity.folder_id.is_(None), NonConformity.folder_id.in_(open_folders),
               concerns(user))


def action_visibility(user: User) -> ColumnElement[bool]:
    """``where`` clause on :class:`Action`: the actions ``user`` may see."""
    if is_admin(user):
        return true()
    linked = Action.record_id.in_(select(NonConformity.id).where(record_visibility(user)))
    named = or_(Action.owner_id == user.id, Action.created_by_id == user.id)
    if is_manager(user):
        return or_(Action.record_id.is_(None), named, linked)
    return or_(named, linked)


# ------------------------------------------------------------------ confidential names
# A confidential folder's name reaches only the people cleared for it: lists, exports, the
# dashboard, detail pages and history go through these.


def folder_name(user: User) -> ColumnElement:
    """Column expression (with ``Folder`` joined): the folder's name if ``user`` may see the
    folder, else NULL (the row keeps ``Folder.confidential`` to say why it is blank)."""
    if is_admin(user):
        return Folder.name
    return case((folder_visibility(user), Folder.name), else_=null())


def can_see_folder(user: User, folder_id: int | None) -> bool:
    """Whether ``user`` may read this folder's name (and file records in it)."""
    if folder_id is None or is_admin(user):
        return True
    return tdb.execute(select(Folder.id).where(
        Folder.id == folder_id, folder_visibility(user))).first() is not None


def hidden_folder_label() -> str:
    """What people not cleared for a confidential folder read instead of its name."""
    return _("Confidential folder")


def history_value(user: User, field: str, value: str | None, ref: int | None,
                  seen: dict[int | None, bool]) -> str | None:
    """A history row's value as ``user`` may read it: a folder's name only when they may see
    that folder (rows without the folder's id: administrators only). ``seen`` caches the
    answers of one page."""
    if field != "folder" or value is None:
        return value
    if ref is None:
        return value if is_admin(user) else hidden_folder_label()
    if ref not in seen:
        seen[ref] = can_see_folder(user, ref)
    return value if seen[ref] else hidden_folder_label()


# ------------------------------------------------------------------ who may change what
# These are checked on objects already fetched through the visibility clauses above.


def can_edit_record(user: User, record: NonConformity) -> bool:
    """Managers and admins, and the people a record names as its author, detector, assignee."""
    return is_manager(user) or user.id in (record.assignee_id, record.detected_by_id,
                                           record.created_by_id)


def can_assign(user: User, record: NonConformity | None, assignee_id: int | None) -> bool:
    """Whether ``user`` may make ``assignee_id`` the assignee of ``record`` (None: a new
    record). Managers and admins choose anyone; the current assignee may hand the record over
    to someone else; nobody else may name themselves, as the assignee's workflow rights would
    follow."""
    if is_manager(user):
        return True
    if record is None:
        return assignee_id != user.id
    return record.assignee_id is not None and record.assignee_id == user.id != assignee_id


def may_reassign(user: User, record: NonConformity) -> bool:
    """Whether the edit form lets ``user`` change the record's assignee at all."""
    return is_manager(user) or (record.assignee_id is not None
                                and record.assignee_id == user.id)


def workflow_roles(user: User, record: NonConformity) -> frozenset[str]:
    """The roles of the workflow rules ``user`` holds on ``record``: ``manager`` (managers
    and admins), ``assignee`` (the record's assignee, whatever their profile)."""
    roles = {"manager"} if is_manager(user) else set()
    if record.assignee_id is not None and record.assignee_id == user.id:
        roles.add("assignee")
    return frozenset(roles)


def may_move(user: User, record: NonConformity, step: str, rules: Rules | None = None) -> bool:
    """Whether the tenant's rules let ``user`` make this move (a status, or ``reopen``)."""
    rules = rules if rules is not None else workflow_rules()
    return bool(workflow_roles(user, record) & rules.get(step, frozenset()))


def allowed_moves(user: User, record: NonConformity,
                  rules: Rules | None = None) -> tuple[str, ...]:
    """The next statuses of ``record`` that ``user`` may move it to."""
    rules = rules if rules is not None else workflow_rules()
    return tuple(s for s in record.next_statuses if may_move(user, record, s, rules))


def can_reopen(user: User, record: NonConformity, rules: Rules | None = None) -> bool:
    return record.is_final and may_move(user, record, "reopen", rules)


def can_edit_workflow_rules(user: User) -> bool:
    return is_admin(user)


def can_edit_action(user: User, action: Action) -> bool:
    return is_manager(user) or user.id in (action.owner_id, action.created_by_id)


def can_check_effectiveness(user: User) -> bool:
    return is_manager(user)


def can_manage_folders(user: User) -> bool:
    return is_manager(user)
