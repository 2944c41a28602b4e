"""The dashboard's quality indicators, each one aggregate query over what the viewer may see
(:mod:`qalitel.records.visibility`), on both backends: lead time to closure (median days
by month of closure), overdue rate of open actions, recurrences by cause category, cost of
non-quality by month of detection. Charts are drawn by the server (:func:`layout`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Integer, and_, case, cast, extract, func, select

from qalitel.records.chart import last_months, layout_chart
from qalitel.records.field_models import CAUSE_CATEGORIES, RecordAnalysis
from qalitel.records.models import ACTION_CLOSED, Action, NonConformity, StatusChange
from qalitel.records.queries import overdue_action
from qalitel.records.visibility import action_visibility, record_visibility
from qalitel.users.models import User
from tenants.context import tdb


@dataclass
class Bar:
    key: Any
    value: float
    extra: int = 0
    x: float = 0
    y: float = 0
    height: float = 0


def _start(keys: list[tuple[int, int]]) -> date:
    return date(keys[0][0], keys[0][1], 1)


def _closures(user: User, since: datetime):
    """(record, closed_at, detected_on) of the visible closed records, last closure since."""
    last = (select(StatusChange.record_id, func.max(StatusChange.changed_at).label("closed_at"))
            .where(StatusChange.to_status == "closed").group_by(StatusChange.record_id)
            .subquery())
    return last, (NonConformity.id == last.c.record_id, NonConformity.status == "closed",
                  record_visibility(user), last.c.closed_at >= since)


def lead_times(user: User, today: date, months: int = 12) -> list[Bar]:
    """Median days from detection to closure, by month of closure (oldest first); ``extra``
    is how many records closed that month."""
    keys = last_months(today, months)
    last, where = _closures(user, datetime.combine(_start(keys), datetime.min.time(), UTC))
    closed_at = last.c.closed_at
    if tdb.get_bind().dialect.name == "postgresql":
        closed_at = func.timezone("UTC", closed_at)
        days = cast(closed_at, Date) - NonConformity.detected_on
    else:
        days = cast(func.julianday(func.date(closed_at))
                    - func.julianday(NonConformity.detected_on), Integer)
    year, month = extract("year", closed_at), extract("month", closed_at)
    ranked = (select(year.label("y"), month.label("m"), days.label("days"),
                     func.row_number().over(partition_by=(year, month), order_by=days)
                     .label("rn"),
                     func.count().over(partition_by=(year, month)).label("n"))
              .select_from(NonConformity).join(last, NonConformity.id == last.c.record_id)
              .where(*where).subquery())
    rows = tdb.execute(select(ranked.c.y, ranked.c.m, func.avg(ranked.c.days),
                              func.max(ranked.c.n))
                       .where(ranked.c.rn * 2 >= ranked.c.n, ranked.c.rn * 2 <= ranked.c.n + 2)
                       .group_by(ranked.c.y, ranked.c.m)).all()
    found = {(int(y), int(m)): (round(float(median), 1), int(n)) for y, m, median, n in rows}
    return [Bar((y, m), *found.get((y, m), (0.0, 0))) for y, m in keys]


def overdue_rate(user: User, today: date) -> dict[str, Any]:
    """Open actions (visible), how many are past due, and the share (None without any)."""
    open_count, overdue = tdb.execute(
        select(func.count(), func.coalesce(func.sum(case((overdue_action(today), 1),
                                                         else_=0)), 0))
        .select_from(Action)
        .where(action_visibility(user), Action.status.notin_(ACTION_CLOSED))).one()
    return {"open": int(open_count), "overdue": int(overdue),
            "rate": int(overdue) / int(open_count) if open_count else None}


def recurrences(user: User, today: date, months: int = 12) -> list[Bar]:
    """Visible records detected in the last ``months`` months, by main cause category."""
    start = _start(last_months(today, months))
    rows = dict(tdb.execute(
        select(RecordAnalysis.main_cause, func.count())
        .join(NonConformity, NonConformity.id == RecordAnalysis.record_id)
        .where(record_visibility(user), RecordAnalysis.main_cause.is_not(None),
               NonConformity.detected_on >= start)
        .group_by(RecordAnalysis.main_cause)).all())
    return [Bar(c, int(rows.get(c, 0))) for c in CAUSE_CATEGORIES]


def costs(user: User, today: date, months: int = 12) -> list[Bar]:
    """Estimated cost of non-quality of the visible records, by month of detection; ``extra``
    is how many records of that month have a cost."""
    keys = last_months(today, months)
    year = extract("year", NonConformity.detected_on)
    month = extract("month", NonConformity.detected_on)
    rows = tdb.execute(select(year, month, func.sum(NonConformity.nq_cost),
                              func.count(NonConformity.nq_cost))
                       .where(and_(record_visibility(user),
                                   NonConformity.detected_on >= _start(keys),
                                   NonConformity.nq_cost.is_not(None)))
                       .group_by(year, month)).all()
    found = {(int(y), int(m)): (Decimal(total or 0), int(n)) for y, m, total, n in rows}
    return [Bar((y, m), *found.get((y, m), (Decimal(0), 0))) for y, m in keys]


def dashboard(user: User, today: date) -> dict[str, Any]:
    """The indicators' context for the dashboard template."""
    cost_bars = costs(user, today)
    return {"lead_chart": layout_chart(lead_times(user, today)),
            "overdue_rate": overdue_rate(user, today),
            "cause_chart": layout_chart(recurrences(user, today)),
            "cost_chart": layout_chart(cost_bars),
            "cost_total": sum((b.value for b in cost_bars), Decimal(0))}
