"""What every write on records checks: text, enumerations, dates, the users and folders a
value names. A value equal to the one already stored is always accepted (``keep``): an edit
never fails, nor drops a value, because of a field the person did not change."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import Row, func, select

from core import validation
from qalitel.records import visibility
from qalitel.records.models import Folder
from qalitel.users.models import User
from tenants.context import tdb

EARLIEST = date(1970, 1, 1)
LATEST = date(2199, 12, 31)


class RecordError(ValueError):
    """Input that cannot be saved; the message is meant for the person who sent it."""


class PermissionDenied(PermissionError):
    """The person may see the object but not make this change."""


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return now().date()


def text(value: str | None, limit: int, label: str, *, required: bool = False,
         multiline: bool = True) -> str:
    """Trimmed text (line breaks as ``\\n``), within ``limit``, without control characters."""
    if value is not None and not isinstance(value, str):
        raise RecordError(_("%(field)s: not a valid text.", field=label))
    cleaned = (value or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if required and not cleaned:
        raise RecordError(_("%(field)s is required.", field=label))
    if len(cleaned) > limit:
        raise RecordError(ngettext("%(field)s is too long (at most %(num)d character).",
                                   "%(field)s is too long (at most %(num)d characters).",
                                   limit, field=label))
    if validation.has_forbidden_characters(cleaned, multiline=multiline):
        raise RecordError(_("%(field)s contains a forbidden character.", field=label))
    return cleaned


def same_text(value: Any, stored: str) -> bool:
    """Whether ``value`` is the stored text as a browser sends it back (CRLF line breaks,
    surrounding blanks): an unchanged field is kept as it is, never checked again."""
    return isinstance(value, str) and (
        value.replace("\r\n", "\n").replace("\r", "\n").strip() == stored)


def choice(value: Any, allowed: Iterable[str], label: str) -> str:
    if not isinstance(value, str) or value not in tuple(allowed):
        raise RecordError(_("%(field)s: not a valid choice.", field=label))
    return value


def valid_date(value: date | None, label: str, *, not_after: date | None = None) -> date | None:
    if value is None:
        return None
    if not isinstance(value, date) or not EARLIEST <= value <= LATEST:
        raise RecordError(_("%(field)s: not a valid date.", field=label))
    if not_after is not None and value > not_after:
        raise RecordError(_("%(field)s cannot be in the future.", field=label))
    return value


def active_user(user_id: int | None, label: str, *, keep: int | None = None) -> int | None:
    """``user_id`` if it names an active user of the tenant (or is ``keep``, the value
    already stored, whatever that user's state)."""
    if user_id is None:
        return None
    if keep is not None and user_id == keep:
        return user_id
    user = tdb.get(User, user_id) if validation.is_id(user_id) else None
    if user is None or user.is_suspended:
        raise RecordError(_("%(field)s: unknown or suspended user.", field=label))
    return user.id


def usable_folder(actor: User, folder_id: int | None, *, keep: int | None = None) -> int | None:
    """``folder_id`` if ``actor`` may file records there (or it is ``keep``)."""
    if folder_id is None:
        return None
    if keep is not None and folder_id == keep:
        return folder_id
    found = validation.is_id(folder_id) and tdb.execute(select(Folder.id).where(
        Folder.id == folder_id, visibility.folder_visibility(actor))).first() is not None
    if not found:
        raise RecordError(_("Folder: not a valid choice."))
    return folder_id


def assignable_users() -> list[Row]:
    """(id, name) of the tenant's active users, by name: choices for assignee, owner, share."""
    return list(tdb.execute(select(User.id, User.name).where(User.suspended_at.is_(None))
                            .order_by(func.lower(User.name), User.id)).all())


def usable_folders(user: User) -> list[Folder]:
    """The folders ``user`` sees and may file records in, by name."""
    return list(tdb.execute(select(Folder).where(visibility.folder_visibility(user))
                            .order_by(func.lower(Folder.name), Folder.id)).scalars())
