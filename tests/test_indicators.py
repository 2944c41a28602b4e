"""Dashboard indicators with known data, on both backends: lead time to closure (median days
by month of closure), overdue rate of open actions, recurrences by cause category, cost of
non-quality per month; each drawn as SVG with its data in a table, computed only over what
the viewer may see (an uncleared manager's exclude the confidential folder's records)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from babel.dates import format_skeleton

from tests.records_world import build_world, client_for

TODAY = date.today()
THIS_MONTH = TODAY.replace(day=1)
LAST_MONTH = (THIS_MONTH - timedelta(days=1)).replace(day=15)

# record: (closed on, days from detection to closure, cost, main cause)
STORY = {
    "other": (THIS_MONTH, 10, "100.00", "machine"),
    "by_user1": (THIS_MONTH, 4, "50.50", "machine"),
    "assigned_user1": (THIS_MONTH, 7, "0", "material"),
    "hr": (THIS_MONTH, 100, "1000", "method"),           # confidential: HR
    "shared_user1": (LAST_MONTH, 3, "20", None),
    "action_user1": (LAST_MONTH, 9, None, None),
}


@pytest.fixture
def world(app, password_hash):
    world = build_world(app, password_hash)
    from qalitel.records.field_models import RecordAnalysis
    from qalitel.records.models import NonConformity, StatusChange
    from tenants.context import tdb

    with app.app_context(), world.context():
        for key, (closed_on, days, cost, cause) in STORY.items():
            record = tdb.get(NonConformity, world.records[key])
            record.detected_on = closed_on - timedelta(days=days)
            record.status = "closed"
            record.nq_cost = Decimal(cost) if cost is not None else None
            tdb.add(StatusChange(record_id=record.id, from_status="verification",
                                 to_status="closed",
                                 changed_at=datetime.combine(closed_on, time(12), UTC)))
            if cause:
                tdb.add(RecordAnalysis(record_id=record.id, main_cause=cause))
    return world


def _label(day: date) -> str:
    """A month as the English pages name it ("Oct 2026")."""
    return format_skeleton("yMMM", day.replace(day=1), locale="en")


def _rows(page: str, indicator: str) -> list[list[str]]:
    """The cells of the data table of one indicator's card."""
    card = page.split(f'id="indicator-{indicator}"', 1)[1].split('<div class="card"', 1)[0]
    table = card.split("<table>", 1)[1].split("</table>", 1)[0]
    assert "<svg" in card and "<title>" in card and "<desc" in card
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)
            for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)]


def _month_row(rows, day: date) -> list[str]:
    return next(row[1:] for row in rows if row and row[0] == _label(day))


def test_indicators_give_exact_numbers_over_what_each_viewer_sees(world):
    manager = client_for(world, "manager1").get(f"/t/{world.slug}/")
    admin = client_for(world, "admin").get(f"/t/{world.slug}/")
    assert manager.status_code == admin.status_code == 200
    manager_page, admin_page = manager.get_data(as_text=True), admin.get_data(as_text=True)

    lead = _rows(manager_page, "lead-time")
    assert len(lead) == 13  # header and 12 months
    assert _month_row(lead, THIS_MONTH) == ["7", "3"]      # 4, 7, 10 days
    assert _month_row(lead, LAST_MONTH) == ["6", "2"]      # 3, 9 days
    assert _month_row(_rows(admin_page, "lead-time"), THIS_MONTH) == ["8.5", "4"]  # + 100

    # Actions: overdue_user1 (3 days late), standalone_user2 (1 day late), standalone_manager1
    # (due in 10 days) for the manager; plus the HR action (no due date) for the admin.
    assert _rows(manager_page, "overdue-rate") == [
        ["Open actions", "3"], ["Overdue actions", "2"], ["Overdue rate", "67%"]]
    assert _rows(admin_page, "overdue-rate")[2] == ["Overdue rate", "50%"]

    causes = dict((row[0], row[1]) for row in _rows(manager_page, "causes")[1:])
    assert causes == {"Method": "0", "Machine": "2", "Material": "1", "Manpower": "0",
                      "Measurement": "0", "Environment": "0"}
    assert dict((r[0], r[1]) for r in _rows(admin_page, "causes")[1:])["Method"] == "1"

    cost = _rows(manager_page, "cost")
    detected = THIS_MONTH - timedelta(days=4)  # the month before this one
    assert _month_row(cost, detected) == ["€170.50", "4"]   # 100 + 50.50 + 0 + 20
    assert "€1,000.00" not in manager_page and "HR" not in manager_page
    hr_month = THIS_MONTH - timedelta(days=100)
    admin_cost = _rows(admin_page, "cost")
    assert _month_row(admin_cost, hr_month) == ["€1,000.00", "1"]
    assert "€1,170.50 in all" in admin_page and "€170.50 in all" in manager_page


def test_a_plain_user_sees_indicators_of_their_own_records_only(world):
    page = client_for(world, "user1").get(f"/t/{world.slug}/").get_data(as_text=True)
    # user1 sees by_user1, assigned_user1, shared_user1, action_user1
    assert _month_row(_rows(page, "lead-time"), THIS_MONTH) == ["5.5", "2"]
    assert _rows(page, "overdue-rate")[0] == ["Open actions", "1"]
    assert "€70.50 in all" in page


def test_no_data_draws_empty_charts():
    from qalitel.records.chart import layout_chart
    from qalitel.records.fields.indicators import Bar

    chart = layout_chart([Bar((2026, m), 0) for m in range(1, 13)])
    assert chart["peak"] == 0 and all(b.height == 0 for b in chart["bars"])
