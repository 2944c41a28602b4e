"""Closure rules (issue 10, item 1), on both backends: a record closes without a word only
when every corrective action not cancelled is done and judged effective, else with a
written justification kept in its workflow and history; a closed or unfounded record is
read-only until a traced reopening; "unfounded" is an outcome of its own; a plain-user
assignee proposes, managers close."""

from __future__ import annotations

import io

import pytest

from tests.records_world import build_world, client_for
from tests.workflow_helpers import (
    bring_to,
    close,
    history_of,
    post,
    record_url,
    snapshot,
    status_of,
    steps_of,
)

KEY = "assigned_user1"  # assigned to user1 (a plain user), written by manager1


@pytest.fixture
def world(app, password_hash):
    return build_world(app, password_hash)


UNPROVEN = {
    "not effective": ((("corrective", "done", False),), b"judged not effective"),
    "not checked": ((("corrective", "done", None), ("corrective", "cancelled", None)),
                    b"has not been checked for effectiveness"),
    "no corrective action": ((("immediate", "done", True),), b"no corrective action"),
}


@pytest.mark.parametrize("case", list(UNPROVEN))
def test_closure_without_proof_needs_a_justification(world, case):
    actions, reason = UNPROVEN[case]
    bring_to(world, KEY, "verification", actions)
    before = snapshot(world, KEY)
    manager = client_for(world, "manager1")
    url = record_url(world, KEY)
    page = manager.get(url).get_data(as_text=True)
    assert "Closing this record will need a written justification" in page
    refused = post(manager, f"{url}/status", {"to_status": "closed", "comment": "done"})
    assert refused.status_code == 400
    assert b"needs a written justification" in refused.data and reason in refused.data
    assert snapshot(world, KEY) == before


def test_closure_with_a_justification_is_kept_in_the_step_the_history_and_the_page(world):
    bring_to(world, KEY, "verification", (("corrective", "done", False),))
    manager = client_for(world, "manager1")
    url = record_url(world, KEY)
    why = "Customer accepted the deviation; supplier changed, see 8D"
    response = post(manager, f"{url}/status", {"to_status": "closed", "comment": "",
                                               "justification": why})
    assert response.status_code == 303
    last = steps_of(world, KEY)[-1]
    assert last[:4] == ("verification", "closed", world.users["manager1"], why)
    history = history_of(world, KEY)
    assert ("status", "verification", "closed", world.users["manager1"]) in history
    assert ("justification", None, why, world.users["manager1"]) in history
    page = manager.get(url).get_data(as_text=True)
    assert why in page and "with a justification" in page and "read-only" in page


def test_every_corrective_action_effective_closes_without_justification(world):
    bring_to(world, KEY, "verification", (("corrective", "done", True),
                                          ("corrective", "cancelled", None),
                                          ("preventive", "done", None)))
    manager = client_for(world, "manager1")
    url = record_url(world, KEY)
    assert "will need a written justification" not in manager.get(url).get_data(as_text=True)
    assert post(manager, f"{url}/status", {"to_status": "closed"}).status_code == 303
    assert status_of(world, KEY) == "closed"
    assert steps_of(world, KEY)[-1][3] is None
    assert "judged effective" in manager.get(url).get_data(as_text=True)


def test_an_unfinished_action_blocks_closure_even_with_a_justification(world):
    bring_to(world, KEY, "verification", (("corrective", "done", True),
                                          ("preventive", "in_progress", None)))
    before = snapshot(world, KEY)
    manager = client_for(world, "manager1")
    url = record_url(world, KEY)
    refused = post(manager, f"{url}/status", {"to_status": "closed", "justification": "x"})
    assert refused.status_code == 400 and b"Finish or cancel every action" in refused.data
    assert snapshot(world, KEY) == before


def test_a_closed_record_its_actions_shares_and_files_are_read_only(world):
    bring_to(world, KEY, "verification", (("corrective", "done", None),))
    close(world, KEY)
    before = snapshot(world, KEY)
    action_id = world.actions[f"{KEY}-0"]
    base = f"/t/{world.slug}"
    url = record_url(world, KEY)
    manager = client_for(world, "manager1")
    page = manager.get(url).get_data(as_text=True)
    assert f"{url}/edit" not in page and f"{url}/actions/new" not in page
    assert f"{url}/shares" not in page and f"{url}/files" not in page
    assert "Change status" not in page and f"{url}/reopen" in page
    assert f"{base}/actions/{action_id}/edit" not in manager.get(
        f"{base}/actions/{action_id}").get_data(as_text=True)

    assert f"{url}/analysis" not in page
    for path, data in ((f"{url}/edit", None), (f"{url}/actions/new", None),
                       (f"{base}/actions/{action_id}/edit", None), (f"{url}/analysis", None),
                       (f"{url}/analysis", {"why_1": "Rewritten", "main_cause": "machine"}),
                       (f"{url}/edit", {"title": "Rewritten", "version": "v1"}),
                       (f"{url}/actions/new", {"title": "One more", "kind": "corrective",
                                               "status": "planned"}),
                       (f"{base}/actions/{action_id}/edit", {"title": "Rewritten"}),
                       (f"{base}/actions/{action_id}/effectiveness", {"effective": "yes"}),
                       (f"{url}/shares", {"user": world.users["user2"]}),
                       (f"{url}/status", {"to_status": "closed"})):
        response = (manager.get(path) if data is None
                    else post(manager, path, data, token_url=url))
        assert response.status_code == 423, (path, response.status_code)
        assert b"is closed: it cannot be changed unless it is reopened" in response.data
    upload = manager.post(f"{url}/files", data={
        "csrf_token": _token(manager, url), "upload": (io.BytesIO(b"%PDF-1.4\n"), "a.pdf")},
        content_type="multipart/form-data")
    assert upload.status_code == 423
    assert snapshot(world, KEY) == before


def _token(client, url):
    from tests.conftest import csrf_token

    return csrf_token(client, url)


def test_the_services_refuse_writes_on_a_closed_record_too(world):
    from qalitel.records import service
    from qalitel.records.fields import analysis
    from qalitel.records.models import Action, NonConformity
    from tenants.context import tdb

    bring_to(world, KEY, "verification", (("corrective", "done", True),))
    close(world, KEY)
    before = snapshot(world, KEY)
    with world.app.app_context(), world.context():
        manager = world.user("manager1")
        record = tdb.get(NonConformity, world.records[KEY])
        action = tdb.get(Action, world.actions[f"{KEY}-0"])
        for attempt in (lambda: service.update_nonconformity(manager, record, title="x"),
                        lambda: service.create_action(manager, "x", record=record),
                        lambda: service.update_action(manager, action, title="x"),
                        lambda: service.check_effectiveness(manager, action, False),
                        lambda: service.share_record(manager, record, world.users["user2"]),
                        lambda: analysis.update_analysis(manager, record, why_1="x"),
                        lambda: service.change_status(manager, record, "treatment")):
            with pytest.raises(service.RecordLocked):
                attempt()
    assert snapshot(world, KEY) == before


def test_a_manager_reopens_with_a_reason_traced_in_the_workflow_and_history(world):
    bring_to(world, KEY, "verification", (("corrective", "done", False),))
    close(world, KEY)
    manager = client_for(world, "manager2")
    url = record_url(world, KEY)
    missing = post(manager, f"{url}/reopen", {"reason": "  "})
    assert missing.status_code == 400 and b"the reason is required" in missing.data
    assert status_of(world, KEY) == "closed"
    why = "Same defect found again on lot 4711"
    assert post(manager, f"{url}/reopen", {"reason": why}).status_code == 303
    assert status_of(world, KEY) == "treatment"
    last = steps_of(world, KEY)[-1]
    assert last[:4] == ("closed", "treatment", world.users["manager2"], why)
    assert last[4] is not None
    history = history_of(world, KEY)
    assert history[-2:] == [("status", "closed", "treatment", world.users["manager2"]),
                            ("justification", None, why, world.users["manager2"])]
    page = manager.get(url).get_data(as_text=True)
    assert "Reopened" in page and why in page
    assert manager.get(f"{url}/edit").status_code == 200  # writable again
    again = post(manager, f"{url}/reopen", {"reason": "twice"})
    assert again.status_code == 409 and status_of(world, KEY) == "treatment"


def test_a_plain_user_cannot_reopen(world):
    close(world, KEY)
    before = snapshot(world, KEY)
    user1 = client_for(world, "user1")  # the record's assignee
    url = record_url(world, KEY)
    assert f"{url}/reopen" not in user1.get(url).get_data(as_text=True)
    refused = post(user1, f"{url}/reopen", {"reason": "I want to"})
    assert refused.status_code == 403
    assert b"Only managers may reopen this record." in refused.data
    assert snapshot(world, KEY) == before


def test_unfounded_needs_a_reason_and_is_an_outcome_of_its_own(world):
    key = "other"  # open, no assignee
    manager = client_for(world, "manager1")
    url = record_url(world, key)
    before = snapshot(world, key)
    refused = post(manager, f"{url}/status", {"to_status": "unfounded", "comment": "no"})
    assert refused.status_code == 400 and b"the justification is required" in refused.data
    assert snapshot(world, key) == before
    why = "Measured again with a calibrated gauge: within tolerance"
    assert post(manager, f"{url}/status", {"to_status": "unfounded",
                                           "justification": why}).status_code == 303
    assert status_of(world, key) == "unfounded"
    assert steps_of(world, key)[-1][:4] == ("open", "unfounded", world.users["manager1"], why)
    assert ("justification", None, why, world.users["manager1"]) in history_of(world, key)
    page = manager.get(url).get_data(as_text=True)
    assert "Declared unfounded" in page and why in page
    locked = manager.get(f"{url}/edit")
    assert locked.status_code == 423 and b"declared unfounded" in locked.data

    base = f"/t/{world.slug}/records/"
    number = f"NC-{world.numbers[key]}<"
    assert number in manager.get(base, query_string={"status": "unfounded"}).get_data(
        as_text=True)
    assert number not in manager.get(base, query_string={"status": "closed"}).get_data(
        as_text=True)
    assert number not in manager.get(base, query_string={"status": "active"}).get_data(
        as_text=True)
    dashboard = manager.get(f"/t/{world.slug}/").get_data(as_text=True)
    assert "Unfounded" in dashboard and "status=unfounded" in dashboard
    export = manager.get(f"{base}export.csv", query_string={"status": "unfounded"})
    assert export.status_code == 200
    assert f"NC-{world.numbers[key]},".encode() in export.data and b"Unfounded" in export.data

    assert post(manager, f"{url}/reopen", {"reason": "New evidence"}).status_code == 303
    assert status_of(world, key) == "analysis"


def test_unfounded_only_from_open_or_analysis(world):
    bring_to(world, KEY, "treatment")
    before = snapshot(world, KEY)
    manager = client_for(world, "manager1")
    url = record_url(world, KEY)
    refused = post(manager, f"{url}/status", {"to_status": "unfounded", "justification": "x"})
    assert refused.status_code == 400 and b"cannot move" in refused.data
    assert snapshot(world, KEY) == before


def test_a_plain_user_assignee_proposes_but_cannot_close(world):
    from qalitel.records import service
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    user1 = client_for(world, "user1")
    url = record_url(world, KEY)
    with world.app.app_context(), world.context():
        service.update_nonconformity(world.user("manager1"),
                                     tdb.get(NonConformity, world.records[KEY]),
                                     cause_analysis="Operator error")
    page = user1.get(url).get_data(as_text=True)
    assert 'value="unfounded"' not in page  # the status form offers allowed moves only
    for step in ("analysis", "treatment", "verification"):
        assert post(user1, f"{url}/status", {"to_status": step}).status_code == 303, step
    page = user1.get(url).get_data(as_text=True)
    assert 'value="treatment"' in page and 'value="closed"' not in page
    before = snapshot(world, KEY)
    refused = post(user1, f"{url}/status", {"to_status": "closed", "justification": "ok"})
    assert refused.status_code == 403
    assert "Only managers may move this record to “Closed”.".encode() in refused.data
    assert snapshot(world, KEY) == before
    assert status_of(world, KEY) == "verification"


def test_a_planned_effectiveness_check_round_trips_and_shows_in_the_action_table(world):
    from datetime import date, timedelta

    from qalitel.records.models import Action
    from tenants.context import tdb
    from tests.html_forms import submit_untouched

    bring_to(world, KEY, "treatment")
    manager = client_for(world, "manager1")
    url = record_url(world, KEY)
    planned = date.today() - timedelta(days=2)
    created = post(manager, f"{url}/actions/new", {
        "title": "New seal supplier", "description": "", "kind": "corrective",
        "owner": world.users["user1"], "due_date": "", "status": "done",
        "effectiveness_due_on": planned.isoformat(),
        "effectiveness_criteria": "No leak on 3 lots\r\nchecked by QA"})
    assert created.status_code == 303
    action_id = int(created.headers["Location"].rsplit("/", 1)[1])

    def action_row() -> dict:
        with world.app.app_context(), world.context():
            action = tdb.get(Action, action_id)
            return {c.key: getattr(action, c.key) for c in Action.__table__.columns}

    row = action_row()
    assert row["effectiveness_due_on"] == planned
    assert row["effectiveness_criteria"] == "No leak on 3 lots\nchecked by QA"
    action_page = manager.get(f"/t/{world.slug}/actions/{action_id}").get_data(as_text=True)
    assert "No leak on 3 lots" in action_page and "Check overdue" in action_page
    table = manager.get(url).get_data(as_text=True)
    assert "Pending" in table and "Check overdue" in table

    edit = f"/t/{world.slug}/actions/{action_id}/edit"
    is_action_form = lambda f: {"title", "effectiveness_criteria"} <= f.names()  # noqa: E731
    assert submit_untouched(manager, edit, is_action_form).status_code == 303
    assert action_row() == row  # untouched: nothing changed
    cleared = submit_untouched(manager, edit, is_action_form, effectiveness_criteria="",
                               effectiveness_due_on=(planned + timedelta(9)).isoformat())
    assert cleared.status_code == 303
    after = action_row()
    assert after["effectiveness_criteria"] is None
    assert after["effectiveness_due_on"] == planned + timedelta(9)
    assert "Check overdue" not in manager.get(url).get_data(as_text=True)

    checked = post(manager, f"/t/{world.slug}/actions/{action_id}/effectiveness",
                   {"effective": "no", "comment": "Leak again on lot 2"})
    assert checked.status_code == 303
    table = manager.get(url).get_data(as_text=True)
    assert "Not effective" in table and "Pending" not in table
