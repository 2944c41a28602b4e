"""Writes on folders: create, rename, mark confidential, clearances. Flush only."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import delete, func, select

from core import validation
from qalitel.records import visibility
from qalitel.records.models import FOLDER_NAME_MAX, Folder, FolderClearance
from qalitel.records.service.checks import PermissionDenied, RecordError, active_user, now
from qalitel.users.models import Group, User
from tenants.context import tdb


def _folder_name(actor: User, name: object, exclude_id: int | None = None) -> str:
    """A checked name, unique (case-insensitively) among the folders ``actor`` sees: a
    folder hidden from them never collides, so no answer tells them a hidden name exists."""
    try:
        cleaned = validation.check_name(name, FOLDER_NAME_MAX)
    except validation.InvalidInput as exc:
        raise RecordError(str(exc)) from exc
    query = select(Folder.id).where(func.lower(Folder.name) == cleaned.lower(),
                                    visibility.folder_visibility(actor))
    if exclude_id is not None:
        query = query.where(Folder.id != exclude_id)
    if tdb.execute(query).first() is not None:
        raise RecordError(_("A folder with this name exists already."))
    return cleaned


def _clear(actor: User, folder: Folder) -> None:
    """Clear ``actor`` for ``folder`` (admins see every folder anyway)."""
    if visibility.is_admin(actor):
        return
    exists = tdb.execute(select(FolderClearance.id).where(
        FolderClearance.folder_id == folder.id, FolderClearance.user_id == actor.id)).first()
    if exists is None:
        tdb.add(FolderClearance(folder_id=folder.id, user_id=actor.id, granted_by_id=actor.id,
                                granted_at=now()))


def create_folder(actor: User, name: str, confidential: bool = False) -> Folder:
    """A new folder; whoever creates a confidential folder is cleared for it."""
    if not visibility.can_manage_folders(actor):
        raise PermissionDenied()
    folder = Folder(name=_folder_name(actor, name), confidential=bool(confidential),
                    created_by_id=actor.id, created_at=now())
    tdb.add(folder)
    tdb.flush()
    if folder.confidential:
        _clear(actor, folder)
    tdb.flush()
    return folder


def _managed_folder(actor: User, folder: Folder) -> None:
    if not visibility.can_manage_folders(actor) or not visibility.can_see_folder(actor,
                                                                                 folder.id):
        raise PermissionDenied()


def update_folder(actor: User, folder: Folder, name: str, confidential: bool) -> None:
    _managed_folder(actor, folder)
    if name != folder.name:
        name = _folder_name(actor, name, exclude_id=folder.id)
        folder.name = name
    if confidential and not folder.confidential:
        _clear(actor, folder)
    if bool(confidential) != folder.confidential:
        folder.confidential = bool(confidential)
    tdb.flush()


def grant_clearance(actor: User, folder: Folder, *, user_id: int | None = None,
                    group_id: int | None = None) -> bool:
    """Clear one manager, or every member of one group, for ``folder``."""
    _managed_folder(actor, folder)
    if (user_id is None) == (group_id is None):
        raise RecordError(_("Choose a user or a group."))
    if user_id is not None:
        active_user(user_id, _("User"))
        where = FolderClearance.user_id == user_id
    else:
        if not validation.is_id(group_id) or tdb.get(Group, group_id) is None:
            raise RecordError(_("Group: not a valid choice."))
        where = FolderClearance.group_id == group_id
    if tdb.execute(select(FolderClearance.id).where(
            FolderClearance.folder_id == folder.id, where)).first() is not None:
        return False
    tdb.add(FolderClearance(folder_id=folder.id, user_id=user_id, group_id=group_id,
                            granted_by_id=actor.id, granted_at=now()))
    tdb.flush()
    return True


def revoke_clearance(actor: User, folder: Folder, clearance_id: int) -> bool:
    _managed_folder(actor, folder)
    result = tdb.execute(delete(FolderClearance).where(FolderClearance.id == clearance_id,
                                                       FolderClearance.folder_id == folder.id))
    return bool(result.rowcount)
