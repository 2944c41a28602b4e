"""A report lays out a bounded amount of a record, whatever the record's size: at most
``ACTIONS_MAX`` actions, the last ``HISTORY_MAX`` changes and ``STEPS_MAX`` steps, free texts
cut at ``TEXT_SHOWN_MAX`` characters; it says what it left out (both backends)."""

from __future__ import annotations

import pytest

from tests.records_world import build_world, client_for
from tests.test_reports import pdf_text


@pytest.fixture(scope="module")
def world(make_module_app, shared_backend, password_hash):
    from qalitel.records import service

    world = build_world(make_module_app(shared_backend), password_hash)
    with world.app.app_context(), world.context():
        manager = world.user("manager1")
        record = service.create_nonconformity(manager, "Big record", "x" * 19000,
                                              folder_id=world.folders["General"])
        for n in range(7):
            service.create_action(manager, f"Bounded action {n:02d}", record=record,
                                  due_date=None)
        for n in range(5):
            service.update_nonconformity(manager, record, title=f"Big record {n}")
        world.records["big"] = record.id
    return world


def test_a_report_says_what_it_left_out(world, monkeypatch):
    from qalitel.reports import content

    monkeypatch.setattr(content, "ACTIONS_MAX", 4)
    monkeypatch.setattr(content, "HISTORY_MAX", 2)
    monkeypatch.setattr(content, "TEXT_SHOWN_MAX", 300)
    client = client_for(world, "manager1")
    for kind in ("pdf", "8d.pdf"):
        response = client.get(f"/t/{world.slug}/records/{world.records['big']}/{kind}")
        assert response.status_code == 200
        text = pdf_text(response.data)
        shown = [n for n in range(7) if f"Bounded action {n:02d}" in text]
        assert shown == [0, 1, 2, 3], kind
        assert "3 more actions are not in this report" in text
        if kind == "pdf":
            assert "3 older changes are not in this report" in text
            assert "x" * 400 not in text.replace(" ", "")


def test_cut_keeps_short_texts_and_marks_long_ones():
    from qalitel.reports.content import NONE, cut

    assert cut("short") == "short" and cut("") == NONE and cut(None) == NONE
    assert cut("abcdef", 4) == "abc…"
