"""What every write on records checks: text, enumerations, dates, the users and folders a
value names. A value equal to the one already stored is always accepted (``keep``): an edit
never fails, nor drops a value, because of a field the person did not change."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import ColumnElement, Row, false, func, literal, select, union_all

from core import dates, validation
from qalitel.records import visibility
from qalitel.records.field_models import CatalogEntry
from qalitel.records.models import Action, Folder, NonConformity
from qalitel.users.models import User
from tenants.context import tdb

EARLIEST = date(1970, 1, 1)
LATEST = date(2199, 12, 31)
AMOUNT_TEXT_MAX = 40


class RecordError(ValueError):
    """Input that cannot be saved; the message is meant for the person who sent it."""


class PermissionDenied(PermissionError):
    """The person may see the object but not make this change (the message, when given,
    says who may)."""


class RecordLocked(Exception):
    """A change to a closed or unfounded record, or to one of its actions: refused until
    the record is reopened (a 423 page)."""

    def __init__(self, record: NonConformity) -> None:
        if record.status == "unfounded":
            message = _("%(ref)s was declared unfounded: it cannot be changed unless it is "
                        "reopened.", ref=record.reference)
        else:
            message = _("%(ref)s is closed: it cannot be changed unless it is reopened.",
                        ref=record.reference)
        self.record_id = record.id
        super().__init__(message)


def _locked_record(target: NonConformity | Action) -> NonConformity | None:
    record = target if isinstance(target, NonConformity) else target.record
    return record if record is not None and record.is_final else None


def is_locked(target: NonConformity | Action) -> bool:
    """A closed or unfounded record, or an action of one: read-only until reopened."""
    return _locked_record(target) is not None


def ensure_writable(target: NonConformity | Action) -> None:
    """Raise :class:`RecordLocked` when ``target`` :func:`is_locked`."""
    record = _locked_record(target)
    if record is not None:
        raise RecordLocked(record)


def lock_record(record: NonConformity) -> NonConformity:
    """Take the record's row lock for the rest of the transaction (``SELECT ... FOR UPDATE``
    on PostgreSQL; SQLite serialises writers already) and reload it, so the checks that follow
    see what the last writer committed: a record cannot be closed while an action is added
    or changed beside it."""
    locked = tdb.get(NonConformity, record.id, with_for_update=True, populate_existing=True)
    assert locked is not None
    return locked


def lock_writable(target: NonConformity | Action) -> None:
    """:func:`lock_record` of ``target``'s record (if any), then :func:`ensure_writable`."""
    record = target if isinstance(target, NonConformity) else target.record
    if record is not None:
        lock_record(record)
    ensure_writable(target)


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return dates.today()


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


def _assignable() -> ColumnElement[bool]:
    """Who may be chosen as assignee, owner or share: the tenant's active users."""
    return User.suspended_at.is_(None)


def assignable_users() -> list[Row]:
    """(id, name) of the tenant's active users, by name: choices for assignee, owner, share."""
    return list(tdb.execute(select(User.id, User.name).where(_assignable())
                            .order_by(func.lower(User.name), User.id)).all())


def usable_folders(user: User) -> list[Row]:
    """(id, name, confidential) of the folders ``user`` sees and may file records in, by name
    (rows, not objects: every list page asks for them)."""
    return list(tdb.execute(select(Folder.id, Folder.name, Folder.confidential)
                            .where(visibility.folder_visibility(user))
                            .order_by(func.lower(Folder.name), Folder.id)).all())


def list_choices(user: User) -> tuple[list[Row], list[Row]]:
    """:func:`assignable_users` and :func:`usable_folders` of ``user``, read in one statement
    (a list page's filter form needs both on every request)."""
    users = select(literal(0).label("kind"), User.id, User.name,
                   false().label("confidential")).where(_assignable())
    folders = select(literal(1).label("kind"), Folder.id, Folder.name,
                     Folder.confidential).where(visibility.folder_visibility(user))
    both = union_all(users, folders).subquery()
    rows = tdb.execute(select(both).order_by(both.c.kind, func.lower(both.c.name),
                                             both.c.id)).all()
    return ([row for row in rows if row.kind == 0], [row for row in rows if row.kind == 1])


# ------------------------------------------------------------------ amounts and list entries


def amount(value: Any, label: str, *, places: int, maximum: Decimal,
           keep: Decimal | None = None) -> Decimal | None:
    """A number ≥ 0 with at most ``places`` decimals and at most ``maximum`` (a quantity, a
    cost), or None; the stored value is kept as it is."""
    if value is None or value == "":
        return None
    if keep is not None and value == keep:
        return keep
    if (isinstance(value, bool) or not isinstance(value, int | str | Decimal)
            or isinstance(value, str) and len(value) > AMOUNT_TEXT_MAX):
        raise RecordError(_("%(field)s: not a valid number.", field=label))
    if isinstance(value, str):
        value = "".join(value.split()).replace("\u202f", "").replace(",", ".")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise RecordError(_("%(field)s: not a valid number.", field=label)) from None
    if not number.is_finite():
        raise RecordError(_("%(field)s: not a valid number.", field=label))
    if number < 0:
        raise RecordError(_("%(field)s cannot be negative.", field=label))
    if number > maximum:
        raise RecordError(_("%(field)s is too large.", field=label))
    if number != number.quantize(Decimal(1).scaleb(-places)):
        raise RecordError(ngettext("%(field)s: at most %(num)d decimal.",
                                   "%(field)s: at most %(num)d decimals.", places, field=label))
    return number.quantize(Decimal(1).scaleb(-places))


def catalog_entry(entry_id: int | None, kinds: tuple[str, ...], label: str, *,
                  keep: int | None = None) -> int | None:
    """``entry_id`` if it names a live entry of one of ``kinds`` (or is ``keep``, the value
    already stored, even archived)."""
    if entry_id is None:
        return None
    if keep is not None and entry_id == keep:
        return entry_id
    found = validation.is_id(entry_id) and tdb.execute(select(CatalogEntry.id).where(
        CatalogEntry.id == entry_id, CatalogEntry.kind.in_(kinds),
        CatalogEntry.archived.is_(false()))).first() is not None
    if not found:
        raise RecordError(_("%(field)s: not a valid choice.", field=label))
    return entry_id
