"""The planned effectiveness check of each action on the actions list and in its CSV, on
both backends and in both languages: the planned date, the result (effective, not effective,
pending, nothing to check) and "check overdue" once the planned date has passed."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

import pytest

from tests.records_world import World, build_world, client_for

TODAY = date.today()
CHECKS = {  # title -> (kind, status, planned on, effective)
    "Late seal check": ("corrective", "done", TODAY - timedelta(days=3), None),
    "Future gasket check": ("corrective", "planned", TODAY + timedelta(days=10), None),
    "Proven torque fix": ("corrective", "done", TODAY - timedelta(days=1), True),
    "Failed hose fix": ("corrective", "done", None, False),
    "Sort the bin": ("immediate", "done", None, None),
}
EXPECTED = {  # title -> (result, check overdue) in en, fr
    "Late seal check": (("Pending", "En attente"), True),
    "Future gasket check": (("Pending", "En attente"), False),
    "Proven torque fix": (("Effective", "Efficace"), False),
    "Failed hose fix": (("Not effective", "Non efficace"), False),
    "Sort the bin": (("", ""), False),
}
HEADERS = {"en": ("Effectiveness check planned on", "Effectiveness", "Check overdue"),
           "fr": ("Vérification d’efficacité prévue le", "Efficacité",
                  "Vérification en retard")}


@pytest.fixture(scope="module")
def world(make_module_app, shared_backend, password_hash) -> World:
    """Read-only: the tests only list and export."""
    from qalitel.records import service
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    world = build_world(make_module_app(shared_backend), password_hash)
    with world.app.app_context(), world.context():
        manager = world.user("manager1")
        record = tdb.get(NonConformity, world.records["assigned_user1"])
        for title, (kind, status, planned, effective) in CHECKS.items():
            action = service.create_action(manager, title, record=record, kind=kind,
                                           status=status, effectiveness_due_on=planned,
                                           effectiveness_criteria="Zero leak for 30 days")
            if effective is not None:
                service.check_effectiveness(world.user("admin"), action, effective)
    return world


def _client(world: World, language: str):
    client = client_for(world, "manager1")
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    return client


def _rows(html: str) -> dict[str, str]:
    """Each listed action's row (its cells' text), by title."""
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        cells = [" ".join(re.sub(r"<[^>]+>", " ", c).split())
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        if cells and cells[0] in CHECKS:
            rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_actions_list_shows_each_planned_check(world, language):
    from babel.dates import format_date

    index = 0 if language == "en" else 1
    response = _client(world, language).get(f"/t/{world.slug}/actions/",
                                            query_string={"q": "", "per_page": "100"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'<th scope="col">{HEADERS[language][1]}</th>' in html
    rows = _rows(html)
    assert set(rows) == set(CHECKS)
    overdue = HEADERS[language][2]
    for title, (results, late) in EXPECTED.items():
        cell = rows[title][-1]
        assert cell.startswith(results[index] or "—"), (title, cell)
        assert (overdue in cell) is late, (title, cell)
        planned = CHECKS[title][2]
        if CHECKS[title][3] is None and planned is not None:
            assert format_date(planned, "medium", locale=language) in cell, (title, cell)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_actions_csv_has_the_planned_check(world, language):
    index = 0 if language == "en" else 1
    response = _client(world, language).get(f"/t/{world.slug}/actions/export.csv")
    assert response.status_code == 200
    body = response.get_data(as_text=True).lstrip("\ufeff")
    first = body.splitlines()[0]
    reader = csv.reader(io.StringIO(body), delimiter=";" if first.count(";") > 3 else ",")
    header, *lines = list(reader)
    planned_at, result_at, late_at = (header.index(h) for h in HEADERS[language])
    rows = {line[1]: line for line in lines if line[1] in CHECKS}
    assert set(rows) == set(CHECKS)
    for title, (results, late) in EXPECTED.items():
        line = rows[title]
        planned = CHECKS[title][2]
        spreadsheet_day = "%d/%m/%Y" if language == "fr" else "%Y-%m-%d"
        assert line[planned_at] == (planned.strftime(spreadsheet_day) if planned else ""), line
        assert line[result_at] == results[index], line
        yes, no = ("Oui", "Non") if language == "fr" else ("Yes", "No")
        assert line[late_at] == (yes if late else no), line
