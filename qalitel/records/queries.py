"""Read side of the records module: the SQL behind lists, exports, detail pages and the
dashboard. Every query starts from the visibility clauses of
:mod:`qalitel.records.visibility`; a confidential folder's name is selected only for the
people cleared for it (:func:`visibility.folder_name`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    extract,
    func,
    literal,
    select,
)
from sqlalchemy.orm import aliased, joinedload

from core.pagination import Page, paginate
from qalitel.records import search
from qalitel.records.chart import MonthBar, last_months, month_bars
from qalitel.records.field_models import CatalogEntry
from qalitel.records.models import (
    ACTION_CLOSED,
    ACTION_KINDS,
    ACTION_STATUSES,
    FINAL_STATUSES,
    SEVERITIES,
    STATUSES,
    Action,
    Folder,
    NonConformity,
)
from qalitel.records.specs import ACTION_SORTS, RECORD_SORTS, ListSpec
from qalitel.records.visibility import action_visibility, folder_name, record_visibility
from qalitel.users.models import User
from tenants.context import tdb


def _rank(column, values: tuple[str, ...]):
    """Sort key following a list's order (workflow order, severity order)."""
    return case({value: i for i, value in enumerate(values)}, value=column, else_=len(values))


def _user_id(value: str, user: User) -> int:
    return user.id if value == "me" else int(value)


def overdue_action(today: date) -> ColumnElement[bool]:
    return and_(Action.due_date.is_not(None), Action.due_date < today,
                Action.status.notin_(ACTION_CLOSED))


def overdue_check(today: date) -> ColumnElement[bool]:
    """An effectiveness check planned before ``today`` and not recorded yet."""
    return and_(Action.effectiveness_due_on.is_not(None), Action.effectiveness_due_on < today,
                Action.effective.is_(None), Action.status != "cancelled")


def check_result(action: Any) -> str | None:
    """The effectiveness check of an action (or of an :func:`action_rows` row): "effective",
    "not_effective", "pending" (not recorded yet, for a corrective action or one with a
    planned check), or None (nothing to check: cancelled, or no check planned)."""
    if action.effective is not None:
        return "effective" if action.effective else "not_effective"
    if action.status == "cancelled":
        return None
    if action.kind == "corrective" or action.effectiveness_due_on is not None:
        return "pending"
    return None


# ------------------------------------------------------------------ non-conformities


def record_conditions(user: User, spec: ListSpec, today: date) -> list[ColumnElement[bool]]:
    """Visibility first, then the list's filters and search."""
    where: list[ColumnElement[bool]] = [record_visibility(user)]
    f = spec.filters
    if "status" in f:
        where.append(NonConformity.status.notin_(FINAL_STATUSES) if f["status"] == "active"
                     else NonConformity.status == f["status"])
    if "severity" in f:
        where.append(NonConformity.severity == f["severity"])
    if "origin" in f:
        where.append(NonConformity.origin == f["origin"])
    if "folder" in f:
        where.append(NonConformity.folder_id.is_(None) if f["folder"] == "none"
                     else NonConformity.folder_id == int(f["folder"]))
    if "assignee" in f:
        where.append(NonConformity.assignee_id.is_(None) if f["assignee"] == "none"
                     else NonConformity.assignee_id == _user_id(f["assignee"], user))
    if f.get("overdue") == "1":
        where.append(exists().where(Action.record_id == NonConformity.id,
                                    overdue_action(today)))
    match = search.record_match(spec.q) if spec.q else None
    if match is not None:
        where.append(match)
    return where


# Module-level aliases: built (and their attribute expressions memoized) once per process.
ASSIGNEE = aliased(User, name="assignee")
DETECTOR = aliased(User, name="detector")
OWNER = aliased(User, name="owner")
# The record fields (qalitel.records.fields) the list and the CSV export carry.
PRODUCT = aliased(CatalogEntry, name="product")
PARTNER = aliased(CatalogEntry, name="partner")
RECORD_FIELD_COLUMNS = (
    PRODUCT.name.label("product_name"), NonConformity.lot, NonConformity.quantity,
    NonConformity.quantity_unit, PARTNER.name.label("partner_name"),
    NonConformity.immediate_action, NonConformity.nq_cost)

RECORD_SORT_KEYS: dict[str, Callable[[User], Any]] = {
    "number": lambda _u: NonConformity.number,
    "title": lambda _u: func.lower(NonConformity.title),
    "status": lambda _u: _rank(NonConformity.status, STATUSES),
    "severity": lambda _u: _rank(NonConformity.severity, SEVERITIES),
    "detected_on": lambda _u: NonConformity.detected_on,
    "folder": lambda u: func.lower(func.coalesce(folder_name(u), "")),
    "assignee": lambda _u: func.lower(func.coalesce(ASSIGNEE.name, "")),
    "updated": lambda _u: NonConformity.updated_at,
}


def record_rows(user: User, spec: ListSpec, today: date,
                conditions: list[ColumnElement[bool]] | None = None, *,
                full: bool = True) -> Select:
    """Rows of the record list (without paging), with the names a table shows; ``full``:
    also the description, the detector and the record fields (the CSV export, the
    dashboard), else only what the list page shows (fewer joins for the server to plan)."""
    has_overdue = exists().where(Action.record_id == NonConformity.id,
                                 overdue_action(today)).label("overdue")
    key = RECORD_SORT_KEYS[spec.sort_key](user)
    order = [key.desc() if spec.descending else key.asc()]
    if spec.sort_key != "number":
        order.append(NonConformity.number.desc())
    if conditions is None:
        conditions = record_conditions(user, spec, today)
    shown = select(NonConformity.id, NonConformity.number, NonConformity.title,
                   NonConformity.status, NonConformity.severity, NonConformity.detected_on,
                   folder_name(user).label("folder_name"),
                   Folder.confidential.label("confidential"),
                   ASSIGNEE.name.label("assignee_name"), has_overdue)
    if full:
        shown = (shown.add_columns(NonConformity.description, NonConformity.origin,
                                   DETECTOR.name.label("detected_by_name"),
                                   *RECORD_FIELD_COLUMNS))
    query = (shown.outerjoin(Folder, NonConformity.folder_id == Folder.id)
             .outerjoin(ASSIGNEE, NonConformity.assignee_id == ASSIGNEE.id))
    if full:
        query = (query.outerjoin(DETECTOR, NonConformity.detected_by_id == DETECTOR.id)
                 .outerjoin(PRODUCT, NonConformity.product_id == PRODUCT.id)
                 .outerjoin(PARTNER, NonConformity.partner_id == PARTNER.id))
    return query.where(*conditions).order_by(*order)


def _page(rows: Select, count: Select, spec: ListSpec) -> Page:
    page = paginate(tdb, rows, count, spec.page, spec.page_size)
    spec.page = page.page
    return page


def record_page(user: User, spec: ListSpec, today: date) -> Page:
    conditions = record_conditions(user, spec, today)
    count = select(func.count()).select_from(NonConformity).where(*conditions)
    return _page(record_rows(user, spec, today, conditions, full=False), count, spec)


# What a record's page (and its report) shows of the rows it refers to: loaded with the
# record, in one statement, instead of one lazy load each.
RECORD_PAGE_LOADS = tuple(joinedload(relation) for relation in (
    NonConformity.folder, NonConformity.detected_by, NonConformity.assignee,
    NonConformity.created_by, NonConformity.product, NonConformity.partner))


def visible_record(user: User, record_id: int, *, shown: bool = False) -> NonConformity | None:
    """The record with this id if ``user`` may see it (else None: the view answers 404);
    ``shown``: with the people, folder and catalogue entries its page shows."""
    query = select(NonConformity).where(NonConformity.id == record_id, record_visibility(user))
    if shown:
        query = query.options(*RECORD_PAGE_LOADS)
    return tdb.execute(query).unique().scalar_one_or_none()


# ------------------------------------------------------------------ actions


def action_conditions(user: User, spec: ListSpec, today: date) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [action_visibility(user)]
    f = spec.filters
    if "status" in f:
        where.append(Action.status.notin_(ACTION_CLOSED) if f["status"] == "active"
                     else Action.status == f["status"])
    if "kind" in f:
        where.append(Action.kind == f["kind"])
    if "owner" in f:
        where.append(Action.owner_id.is_(None) if f["owner"] == "none"
                     else Action.owner_id == _user_id(f["owner"], user))
    if "record" in f:
        where.append(Action.record_id.is_(None) if f["record"] == "none"
                     else Action.record_id == int(f["record"]))
    if f.get("overdue") == "1":
        where.append(overdue_action(today))
    match = search.action_match(spec.q, record_visibility(user)) if spec.q else None
    if match is not None:
        where.append(match)
    return where


ACTION_SORT_KEYS: dict[str, Callable[[], Any]] = {
    "id": lambda: Action.id,
    "title": lambda: func.lower(Action.title),
    "kind": lambda: _rank(Action.kind, ACTION_KINDS),
    "status": lambda: _rank(Action.status, ACTION_STATUSES),
    "due_date": lambda: func.coalesce(Action.due_date, date(9999, 12, 31)),
    "owner": lambda: func.lower(func.coalesce(OWNER.name, "")),
    "record": lambda: func.coalesce(NonConformity.number, 0),
}


def action_rows(user: User, spec: ListSpec, today: date,
                conditions: list[ColumnElement[bool]] | None = None) -> Select:
    is_overdue = case((overdue_action(today), literal(True)), else_=literal(False))
    late_check = case((overdue_check(today), literal(True)), else_=literal(False))
    key = ACTION_SORT_KEYS[spec.sort_key]()
    order = [key.desc() if spec.descending else key.asc(), Action.id.desc()]
    if conditions is None:
        conditions = action_conditions(user, spec, today)
    return (select(Action.id, Action.title, Action.kind, Action.status, Action.due_date,
                   Action.effective, Action.effectiveness_due_on, Action.record_id,
                   NonConformity.number.label("record_number"),
                   OWNER.name.label("owner_name"), is_overdue.label("overdue"),
                   late_check.label("check_overdue"))
            .outerjoin(NonConformity, Action.record_id == NonConformity.id)
            .outerjoin(OWNER, Action.owner_id == OWNER.id)
            .where(*conditions)
            .order_by(*order))


def action_page(user: User, spec: ListSpec, today: date) -> Page:
    conditions = action_conditions(user, spec, today)
    count = select(func.count()).select_from(Action).where(*conditions)
    return _page(action_rows(user, spec, today, conditions), count, spec)


def visible_action(user: User, action_id: int) -> Action | None:
    return tdb.execute(select(Action).where(
        Action.id == action_id, action_visibility(user))).scalar_one_or_none()


def record_actions(user: User, record_id: int, today: date) -> list[Any]:
    spec = ListSpec(name="actions", filters={"record": str(record_id)}, sort="due_date")
    return list(tdb.execute(action_rows(user, spec, today)).all())


# ------------------------------------------------------------------ dashboard


def status_counts(user: User) -> dict[str, int]:
    rows = tdb.execute(select(NonConformity.status, func.count())
                       .where(record_visibility(user)).group_by(NonConformity.status)).all()
    return {status: count for status, count in rows}


def overdue_action_count(user: User, today: date, *, mine: bool = False) -> int:
    query = (select(func.count()).select_from(Action)
             .where(action_visibility(user), overdue_action(today)))
    if mine:
        query = query.where(Action.owner_id == user.id)
    return tdb.execute(query).scalar() or 0


def open_action_count(user: User) -> int:
    return tdb.execute(select(func.count()).select_from(Action).where(
        action_visibility(user), Action.owner_id == user.id,
        Action.status.notin_(ACTION_CLOSED))).scalar() or 0


def records_per_month(user: User, today: date, months: int = 12) -> list[MonthBar]:
    """Visible records by month of detection, over the last ``months`` months (oldest first)."""
    keys = last_months(today, months)
    start = date(keys[0][0], keys[0][1], 1)
    y = extract("year", NonConformity.detected_on)
    m = extract("month", NonConformity.detected_on)
    rows = tdb.execute(select(y, m, func.count())
                       .where(record_visibility(user), NonConformity.detected_on >= start)
                       .group_by(y, m)).all()
    return month_bars(keys, {(int(r[0]), int(r[1])): int(r[2]) for r in rows})


assert set(RECORD_SORTS) == set(RECORD_SORT_KEYS) and set(ACTION_SORTS) == set(ACTION_SORT_KEYS)
