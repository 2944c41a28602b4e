"""Search in records and actions, accent- and case-insensitive, the same on both databases.

Each searched model names the fields search reads in one tuple, ``SEARCHED``; its
``search_text`` column holds those fields folded (:func:`core.text.fold`). The column is kept
up to date by :func:`before_flush` on every ORM write (registered on the tenant session by
:mod:`qalitel.tenancy`) and by :func:`reindex` where rows are written around the ORM: the
erasure's replacements, and a restored or imported database, whatever its rows said
(:func:`reindex_database`, a restore replayer) and a field an engineer changed through the
maintenance door (:func:`after_maintenance_change`).

A query is folded the same way and split into words (at most :data:`MAX_WORDS`); every word
must appear (AND), as a substring, LIKE wildcards taken literally. A record matches a word in
its own text, in its structured analysis' text (5 Whys, Ishikawa) or in one of its actions'
text; an action, in its own text. A query that is a
record reference ("NC-12", "#12", "12") also finds that record and its actions. These clauses
only narrow: :mod:`qalitel.records.visibility` still decides what a person may see.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session, attributes

from core.text import fold
from qalitel.records.field_models import RecordAnalysis
from qalitel.records.models import Action, NonConformity

Searchable = type[NonConformity] | type[Action] | type[RecordAnalysis]
SEARCHABLE: tuple[Searchable, ...] = (NonConformity, Action, RecordAnalysis)
MAX_WORDS = 8
BATCH = 500


def text_of(values: Any, fields: Sequence[str]) -> str:
    """The ``search_text`` of an object (or a row) with these field values."""
    parts = (getattr(values, name, None) for name in fields)
    return fold(" ".join(part for part in parts if isinstance(part, str)))


def before_flush(session: Session, _context: Any, _instances: Any) -> None:
    """Fold the searched fields of every new record or action, and of those whose searched
    fields changed, into their ``search_text``."""
    with session.no_autoflush:
        for obj in chain(session.new, session.dirty):
            if not isinstance(obj, SEARCHABLE):
                continue
            fields = type(obj).SEARCHED
            if obj not in session.new and not any(
                    attributes.get_history(obj, name).has_changes() for name in fields):
                continue
            text = text_of(obj, fields)
            if obj.search_text != text:
                obj.search_text = text


# ------------------------------------------------------------------ around the ORM


def _key(table: Table) -> Any:
    """The one integer primary key column (``id``; ``record_id`` for an analysis)."""
    [key] = table.primary_key.columns
    return key


def _batches(executor: Any, table: Table, fields: list, ids: Iterable[int] | None
             ) -> Iterator[list[Any]]:
    key = _key(table)
    query = select(key.label("row_key"), table.c.search_text, *fields)
    if ids is not None:
        wanted = sorted(set(ids))
        for start in range(0, len(wanted), BATCH):
            yield list(executor.execute(query.where(key.in_(wanted[start:start + BATCH]))))
        return
    last = 0
    while rows := list(executor.execute(
            query.where(key > last).order_by(key).limit(BATCH))):
        yield rows
        last = rows[-1].row_key


def reindex(executor: Any, model: Searchable, ids: Iterable[int] | None = None) -> int:
    """Recompute ``search_text`` of ``model``'s rows (those of primary keys ``ids``, or all),
    in batches, through a session or a connection; returns how many rows changed.
    ``updated_at`` is kept: the row's content did not change."""
    table: Table = model.__table__  # type: ignore[assignment]
    fields = [table.c[name] for name in model.SEARCHED]
    kept = {c.name: c for c in table.c if c.onupdate is not None}
    statement = (update(table).where(_key(table) == bindparam("row_key_"))
                 .values(search_text=bindparam("row_text"), **kept))
    changed = 0
    for rows in _batches(executor, table, fields, ids):
        stale = [{"row_key_": row.row_key, "row_text": text}
                 for row in rows if (text := text_of(row, model.SEARCHED)) != row.search_text]
        if stale:
            executor.execute(statement, stale)
            changed += len(stale)
    return changed


def reindex_database(_info: Any, engine: Any, _uids: tuple[str, ...]) -> int:
    """A restored or imported database's search columns, recomputed before it goes live
    (a :mod:`backups.replay` replayer: an older backup, or an archive's rows, may hold none or
    stale ones)."""
    with engine.begin() as conn:
        return sum(reindex(conn, model) for model in SEARCHABLE)


def after_maintenance_change(tenant: Any, table: str, record_id: Any, column: str) -> None:
    """A searched field an engineer changed through the maintenance door
    (:mod:`maintenance.changes`): its row's ``search_text``, recomputed through the tenant's
    own connection (the grant may not write the column)."""
    from qalitel.transaction import unit_of_work
    from tenants.context import tdb, tenant_context
    from tenants.engines import TenantInfo

    model = next((m for m in SEARCHABLE if m.__tablename__ == table), None)
    if model is None or column not in model.SEARCHED or not isinstance(record_id, int):
        return
    with tenant_context(TenantInfo.from_row(tenant)), unit_of_work():
        reindex(tdb, model, [record_id])


# ------------------------------------------------------------------ queries


def words(query: str) -> list[str]:
    """The distinct folded words of ``query``, at most :data:`MAX_WORDS`."""
    return list(dict.fromkeys(fold(query).split()))[:MAX_WORDS]


def reference_number(query: str) -> int | None:
    """The record number a query such as "NC-12", "#12" or "12" names, else None."""
    digits = query.strip().upper().removeprefix("NC-").removeprefix("#").strip()
    if digits.isascii() and digits.isdigit() and len(digits) < 10:
        return int(digits)
    return None


def _has(column: Any, word: str) -> ColumnElement[bool]:
    return column.contains(word, autoescape=True)


def record_match(query: str) -> ColumnElement[bool] | None:
    """``where`` clause on :class:`NonConformity`: records whose text, whose analysis' text
    or one of whose actions' text holds every word of ``query``; None when it has no word."""
    terms = [or_(_has(NonConformity.search_text, word),
                 NonConformity.id.in_(select(RecordAnalysis.record_id).where(
                     _has(RecordAnalysis.search_text, word))),
                 NonConformity.id.in_(select(Action.record_id).where(
                     Action.record_id.is_not(None), _has(Action.search_text, word))))
             for word in words(query)]
    number = reference_number(query)
    if number is not None:
        return or_(NonConformity.number == number, and_(*terms))
    return and_(*terms) if terms else None


def action_match(query: str, visible_records: ColumnElement[bool]) -> ColumnElement[bool] | None:
    """``where`` clause on :class:`Action`: actions whose text holds every word of ``query``,
    or, for a record reference, the actions of that record among ``visible_records``."""
    terms = [_has(Action.search_text, word) for word in words(query)]
    number = reference_number(query)
    if number is not None:
        return or_(Action.record_id.in_(select(NonConformity.id).where(
            NonConformity.number == number, visible_records)), and_(*terms))
    return and_(*terms) if terms else None
