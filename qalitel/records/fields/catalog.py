"""The tenant-managed lists (products, processes, customers, suppliers): managers and admins
add, rename and archive entries. Flush only: the request commits."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from core.text import fold
from qalitel.records import visibility
from qalitel.records.field_models import CATALOG_KINDS, CATALOG_NAME_MAX, CatalogEntry
from qalitel.records.service.checks import PermissionDenied, RecordError, choice, text
from qalitel.users.models import User
from tenants.context import tdb


def can_manage(user: User) -> bool:
    return visibility.is_manager(user)


def _taken(name: str) -> RecordError:
    return RecordError(_("This list already has an entry named “%(name)s”.", name=name))


def _check_name(kind: str, name: Any, entry_id: int | None = None) -> str:
    """The cleaned name, unless another entry of ``kind`` has it, compared folded in Python
    (case and accents: SQLite's ``lower`` knows ASCII only; lists are short)."""
    cleaned = text(name, CATALOG_NAME_MAX, _("Name"), required=True, multiline=False)
    wanted = fold(cleaned)
    others = tdb.execute(select(CatalogEntry.name).where(
        CatalogEntry.kind == kind, CatalogEntry.id != (entry_id or 0))).scalars()
    if any(fold(other) == wanted for other in others):
        raise _taken(cleaned)
    return cleaned


def _write(entry: CatalogEntry, name: str) -> None:
    """Give ``entry`` ``name`` and flush it in a savepoint: a twin written meanwhile (two
    requests at once) is the same clear error, the session left usable."""
    old = entry.name
    try:
        with tdb.begin_nested():
            entry.name = name
            tdb.add(entry)
            tdb.flush()
    except IntegrityError:
        entry.name = old
        raise _taken(name) from None


def add_entry(actor: User, kind: str, name: Any) -> CatalogEntry:
    if not can_manage(actor):
        raise PermissionDenied()
    kind = choice(kind, CATALOG_KINDS, _("List"))
    entry = CatalogEntry(kind=kind)
    _write(entry, _check_name(kind, name))
    return entry


def rename_entry(actor: User, entry: CatalogEntry, name: Any) -> bool:
    """Rename ``entry``; False when the name did not change. Records name it by id, so they
    all follow; their history keeps the name they had."""
    if not can_manage(actor):
        raise PermissionDenied()
    if isinstance(name, str) and name.strip() == entry.name:
        return False
    _write(entry, _check_name(entry.kind, name, entry.id))
    return True


def set_archived(actor: User, entry: CatalogEntry, archived: bool) -> None:
    """An archived entry is offered no more; the records naming it keep it, labelled."""
    if not can_manage(actor):
        raise PermissionDenied()
    entry.archived = bool(archived)
    tdb.flush()


def entries(kinds: tuple[str, ...] = CATALOG_KINDS) -> list[CatalogEntry]:
    """Entries of ``kinds``, live ones first, by kind and name."""
    return list(tdb.execute(select(CatalogEntry).where(CatalogEntry.kind.in_(kinds))
                            .order_by(CatalogEntry.archived, CatalogEntry.kind,
                                      func.lower(CatalogEntry.name), CatalogEntry.id))
                .scalars())


def entry_options(kinds: tuple[str, ...], keep: int | None = None) -> list[Any]:
    """Select options: live entries of ``kinds``, plus ``keep`` (the value stored) even when
    archived, labelled so (an edit that leaves the field alone keeps it)."""
    from qalitel.records.field_labels import CATALOG_KIND_LABELS
    from qalitel.records.forms import NONE, options

    pairs: list[tuple[Any, Any]] = [(NONE, _("(none)"))]
    for entry in entries(kinds):
        if entry.archived and entry.id != keep:
            continue
        name = _("%(name)s (archived)", name=entry.name) if entry.archived else entry.name
        pairs.append((entry.id, _("%(kind)s: %(name)s", kind=CATALOG_KIND_LABELS[entry.kind],
                                  name=name) if len(kinds) > 1 else name))
    return options(pairs)
