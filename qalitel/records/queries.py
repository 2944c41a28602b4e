"""Read side of the records module: list specifications (filters, sort, page), the queries
behind lists, CSV exports and the dashboard. Every query starts from the visibility clauses
of :mod:`qalitel.records.visibility`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
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
    or_,
    select,
)
from sqlalchemy.orm import aliased

from qalitel.records.models import (
    ACTION_CLOSED,
    ACTION_KINDS,
    ACTION_STATUSES,
    ORIGINS,
    SEVERITIES,
    STATUSES,
    Action,
    Folder,
    NonConformity,
)
from qalitel.records.visibility import action_visibility, record_visibility
from qalitel.users.models import User
from tenants.context import tdb

PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 25
SEARCH_MAX = 100
EXPORT_MAX = 50000
MAX_PAGE = 10**6


def _rank(column, values: tuple[str, ...]):
    """Sort key following a list's order (workflow order, severity order)."""
    return case({value: i for i, value in enumerate(values)}, value=column, else_=len(values))


@dataclass
class ListSpec:
    """What a list shows: validated filters, sort, page. Unknown values are dropped."""

    name: str
    filters: dict[str, str] = field(default_factory=dict)
    q: str = ""
    sort: str = ""
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def sort_key(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    def args(self, **override: Any) -> dict[str, Any]:
        """Query-string arguments reproducing this list (for links), with overrides."""
        values: dict[str, Any] = dict(self.filters)
        if self.q:
            values["q"] = self.q
        values["sort"] = self.sort
        values["per_page"] = self.page_size
        values["page"] = self.page
        values.update(override)
        return {k: v for k, v in values.items() if v not in (None, "")}

    def sort_args(self, key: str) -> dict[str, Any]:
        """Arguments of a column header link: sort by ``key``, toggling the direction."""
        target = f"-{key}" if self.sort == key else key
        return self.args(sort=target, page=1)


def _int_id(value: str) -> bool:
    return value.isdigit() and len(value) < 10


def _user_filter(value: str) -> bool:
    return value in ("me", "none") or _int_id(value)


# Per list: allowed filters (name -> validator), sort columns, default sort.
RECORD_FILTERS = {
    "status": lambda v: v in STATUSES or v == "active",
    "severity": lambda v: v in SEVERITIES,
    "origin": lambda v: v in ORIGINS,
    "folder": lambda v: v == "none" or _int_id(v),
    "assignee": _user_filter,
    "overdue": lambda v: v == "1",
}
ACTION_FILTERS = {
    "status": lambda v: v in ACTION_STATUSES or v == "active",
    "kind": lambda v: v in ACTION_KINDS,
    "owner": _user_filter,
    "overdue": lambda v: v == "1",
    "record": lambda v: v == "none" or _int_id(v),
}
RECORD_SORTS = ("number", "title", "status", "severity", "detected_on", "folder", "assignee",
                "updated")
ACTION_SORTS = ("id", "title", "kind", "status", "due_date", "owner", "record")
DEFAULTS = {"records": "-number", "actions": "due_date"}
LISTS = {"records": (RECORD_FILTERS, RECORD_SORTS), "actions": (ACTION_FILTERS, ACTION_SORTS)}


def _to_int(raw: Any, default: int) -> int:
    if not isinstance(raw, str | int) or len(str(raw)) > 12:
        return default
    try:
        return int(raw)
    except ValueError:
        return default


def parse_spec(name: str, args: Mapping[str, Any]) -> ListSpec:
    """A list spec from query arguments or saved preferences, keeping only allowed values."""
    allowed_filters, sorts = LISTS[name]
    filters = {}
    for key, check in allowed_filters.items():
        value = args.get(key)
        if isinstance(value, str) and value and len(value) <= 40 and check(value):
            filters[key] = value
    q = args.get("q")
    q = q.strip()[:SEARCH_MAX] if isinstance(q, str) else ""
    sort = args.get("sort")
    if not isinstance(sort, str) or sort.lstrip("-") not in sorts or sort.count("-") > 1:
        sort = DEFAULTS[name]
    page_size = _to_int(args.get("per_page", args.get("page_size")), DEFAULT_PAGE_SIZE)
    if page_size not in PAGE_SIZES:
        page_size = DEFAULT_PAGE_SIZE
    page = min(max(_to_int(args.get("page"), 1), 1), MAX_PAGE)
    return ListSpec(name=name, filters=filters, q="".join(c for c in q if c >= " "),
                    sort=sort, page=page, page_size=page_size)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _reference_number(text: str) -> int | None:
    digits = text.upper().removeprefix("NC-").removeprefix("#").strip()
    if digits.isdigit() and len(digits) < 10:
        return int(digits)
    return None


def _user_id(value: str, user: User) -> int | None:
    return user.id if value == "me" else int(value)


def overdue_action(today: date) -> ColumnElement[bool]:
    return and_(Action.due_date.is_not(None), Action.due_date < today,
                Action.status.notin_(ACTION_CLOSED))


# ------------------------------------------------------------------ non-conformities


def record_conditions(user: User, spec: ListSpec, today: date) -> list[ColumnElement[bool]]:
    """Visibility first, then the list's filters and search."""
    where: list[ColumnElement[bool]] = [record_visibility(user)]
    f = spec.filters
    if "status" in f:
        where.append(NonConformity.status != "closed" if f["status"] == "active"
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
    if spec.q:
        pattern = _like(spec.q)
        terms = [NonConformity.title.ilike(pattern, escape="\\"),
                 NonConformity.description.ilike(pattern, escape="\\")]
        number = _reference_number(spec.q)
        if number is not None:
            terms.append(NonConformity.number == number)
        where.append(or_(*terms))
    return where


# Module-level aliases: built (and their attribute expressions memoized) once per process.
ASSIGNEE = aliased(User, name="assignee")
DETECTOR = aliased(User, name="detector")
OWNER = aliased(User, name="owner")

RECORD_SORT_KEYS: dict[str, Callable[[], Any]] = {
    "number": lambda: NonConformity.number,
    "title": lambda: func.lower(NonConformity.title),
    "status": lambda: _rank(NonConformity.status, STATUSES),
    "severity": lambda: _rank(NonConformity.severity, SEVERITIES),
    "detected_on": lambda: NonConformity.detected_on,
    "folder": lambda: func.lower(func.coalesce(Folder.name, "")),
    "assignee": lambda: func.lower(func.coalesce(ASSIGNEE.name, "")),
    "updated": lambda: NonConformity.updated_at,
}


def record_rows(user: User, spec: ListSpec, today: date,
                conditions: list[ColumnElement[bool]] | None = None) -> Select:
    """Rows of the record list (without paging), with the names a table shows."""
    has_overdue = exists().where(Action.record_id == NonConformity.id,
                                 overdue_action(today)).label("overdue")
    key = RECORD_SORT_KEYS[spec.sort_key]()
    order = [key.desc() if spec.descending else key.asc()]
    if spec.sort_key != "number":
        order.append(NonConformity.number.desc())
    if conditions is None:
        conditions = record_conditions(user, spec, today)
    return (select(NonConformity.id, NonConformity.number, NonConformity.title,
                   NonConformity.description, NonConformity.status, NonConformity.severity,
                   NonConformity.origin, NonConformity.detected_on,
                   Folder.name.label("folder_name"), Folder.confidential.label("confidential"),
                   ASSIGNEE.name.label("assignee_name"), DETECTOR.name.label("detected_by_name"),
                   has_overdue)
            .outerjoin(Folder, NonConformity.folder_id == Folder.id)
            .outerjoin(ASSIGNEE, NonConformity.assignee_id == ASSIGNEE.id)
            .outerjoin(DETECTOR, NonConformity.detected_by_id == DETECTOR.id)
            .where(*conditions)
            .order_by(*order))


@dataclass
class Page:
    rows: list[Any]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def first_index(self) -> int:
        return 0 if not self.total else (self.page - 1) * self.page_size + 1

    @property
    def last_index(self) -> int:
        return min(self.total, self.page * self.page_size)


def _paginate(rows: Select, count: Select, spec: ListSpec) -> Page:
    total = tdb.execute(count).scalar() or 0
    pages = max(1, -(-total // spec.page_size))
    spec.page = min(spec.page, pages)
    items = tdb.execute(rows.limit(spec.page_size)
                        .offset((spec.page - 1) * spec.page_size)).all()
    return Page(rows=list(items), total=total, page=spec.page, page_size=spec.page_size)


def record_page(user: User, spec: ListSpec, today: date) -> Page:
    conditions = record_conditions(user, spec, today)
    count = select(func.count()).select_from(NonConformity).where(*conditions)
    return _paginate(record_rows(user, spec, today, conditions), count, spec)


def visible_record(user: User, record_id: int) -> NonConformity | None:
    """The record with this id if ``user`` may see it (else None: the view answers 404)."""
    return tdb.execute(select(NonConformity).where(
        NonConformity.id == record_id, record_visibility(user))).scalar_one_or_none()


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
    if spec.q:
        pattern = _like(spec.q)
        where.append(or_(Action.title.ilike(pattern, escape="\\"),
                         Action.description.ilike(pattern, escape="\\")))
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
    key = ACTION_SORT_KEYS[spec.sort_key]()
    order = [key.desc() if spec.descending else key.asc(), Action.id.desc()]
    if conditions is None:
        conditions = action_conditions(user, spec, today)
    return (select(Action.id, Action.title, Action.kind, Action.status, Action.due_date,
                   Action.effective, Action.record_id, NonConformity.number.label("record_number"),
                   OWNER.name.label("owner_name"), is_overdue.label("overdue"))
            .outerjoin(NonConformity, Action.record_id == NonConformity.id)
            .outerjoin(OWNER, Action.owner_id == OWNER.id)
            .where(*conditions)
            .order_by(*order))


def action_page(user: User, spec: ListSpec, today: date) -> Page:
    conditions = action_conditions(user, spec, today)
    count = select(func.count()).select_from(Action).where(*conditions)
    return _paginate(action_rows(user, spec, today, conditions), count, spec)


def visible_action(user: User, action_id: int) -> Action | None:
    return tdb.execute(select(Action).where(
        Action.id == action_id, action_visibility(user))).scalar_one_or_none()


def record_actions(user: User, record_id: int, today: date) -> list[Any]:
    spec = ListSpec(name="actions", filters={"record": str(record_id)}, sort="due_date")
    return list(tdb.execute(action_rows(user, spec, today)).all())


# ------------------------------------------------------------------ CSV


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet will not run: text starting like a formula gets a quote."""
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return out.getvalue()


# ------------------------------------------------------------------ dashboard


@dataclass
class MonthBar:
    year: int
    month: int
    count: int
    x: float = 0
    y: float = 0
    height: float = 0


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
    keys = []
    year, month = today.year, today.month
    for _ in range(months):
        keys.append((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    keys.reverse()
    start = date(keys[0][0], keys[0][1], 1)
    y = extract("year", NonConformity.detected_on)
    m = extract("month", NonConformity.detected_on)
    rows = tdb.execute(select(y, m, func.count())
                       .where(record_visibility(user), NonConformity.detected_on >= start)
                       .group_by(y, m)).all()
    counts = {(int(r[0]), int(r[1])): int(r[2]) for r in rows}
    return [MonthBar(yy, mm, counts.get((yy, mm), 0)) for yy, mm in keys]


def layout_chart(bars: list[MonthBar], width: int = 600, height: int = 200,
                 bottom: int = 24, top: int = 16) -> dict[str, Any]:
    """Bar geometry for the server-drawn SVG chart."""
    peak = max((b.count for b in bars), default=0)
    slot = width / max(len(bars), 1)
    room = height - bottom - top
    for i, bar in enumerate(bars):
        bar.height = round(room * bar.count / peak, 1) if peak else 0
        bar.x = round(i * slot + slot * 0.15, 1)
        bar.y = round(top + room - bar.height, 1)
    return {"bars": bars, "width": width, "height": height, "bar_width": round(slot * 0.7, 1),
            "baseline": height - bottom, "peak": peak, "slot": slot}


assert set(RECORD_SORTS) == set(RECORD_SORT_KEYS) and set(ACTION_SORTS) == set(ACTION_SORT_KEYS)
