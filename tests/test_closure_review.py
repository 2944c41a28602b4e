"""Closure rules, the holes a review found (issue 10), on both backends unless said: the
structured analysis of a closed record is read-only; a verdict of effective does not survive
its action leaving "done", and a corrective action judged not effective stays a closure gap
when cancelled; only managers, admins and the current assignee change a record's assignee;
on PostgreSQL, closing a record and adding an action to it cannot both succeed."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from sqlalchemy import text as sql

from tests.html_forms import form_of, submit_untouched
from tests.records_world import build_world, client_for
from tests.workflow_helpers import (
    bring_to,
    close,
    history_of,
    post,
    record_url,
    snapshot,
    status_of,
)

KEY = "assigned_user1"  # assigned to user1 (a plain user), written by manager1
EN = {"Accept-Language": "en"}


@pytest.fixture
def world(app, password_hash):
    return build_world(app, password_hash)


def _record_and(world, key: str, action_key: str | None = None):
    from qalitel.records.models import Action, NonConformity
    from tenants.context import tdb

    record = tdb.get(NonConformity, world.records[key])
    return record, tdb.get(Action, world.actions[action_key]) if action_key else None


# ------------------------------------------------------------------ structured analysis


def test_the_analysis_of_a_closed_or_unfounded_record_is_read_only(world):
    from qalitel.records.fields import analysis
    from qalitel.records.service import RecordLocked

    close(world, KEY)
    manager = client_for(world, "manager1")
    url = record_url(world, KEY)
    before = snapshot(world, KEY)
    assert manager.get(f"{url}/analysis").status_code == 423
    assert f"{url}/analysis" not in manager.get(url).get_data(as_text=True)
    posted = post(manager, f"{url}/analysis", {"why_1": "Rewritten after closure",
                                               "main_cause": "machine"}, token_url=url)
    assert posted.status_code == 423 and b"is closed" in posted.data
    with world.app.test_request_context(headers=EN), world.context():
        record, _ = _record_and(world, KEY)
        with pytest.raises(RecordLocked):
            analysis.update_analysis(world.user("manager1"), record, why_1="Rewritten")
    assert snapshot(world, KEY) == before

    from qalitel.records import service

    with world.app.test_request_context(headers=EN), world.context():
        record, _ = _record_and(world, "other")
        service.change_status(world.user("manager1"), record, "unfounded",
                              justification="Customer misuse")
    other = record_url(world, "other")
    refused = post(manager, f"{other}/analysis", {"why_1": "x"}, token_url=other)
    assert refused.status_code == 423 and b"declared unfounded" in refused.data


def test_the_analysis_form_of_an_open_record_still_round_trips(world):
    manager = client_for(world, "manager1")
    url = record_url(world, KEY)
    before = snapshot(world, KEY)
    saved = submit_untouched(manager, f"{url}/analysis", lambda f: "why_1" in f.names())
    assert saved.status_code == 303
    assert snapshot(world, KEY) == before


# ------------------------------------------------------------------ verdicts


def test_a_verdict_of_effective_is_withdrawn_when_its_action_leaves_done(world):
    from qalitel.records import service

    bring_to(world, KEY, "treatment", (("corrective", "done", True),))
    with world.app.test_request_context(headers=EN), world.context():
        manager = world.user("manager1")
        record, action = _record_and(world, KEY, f"{KEY}-0")
        service.update_action(manager, action, status="in_progress")
        assert (action.effective, action.effectiveness_checked_by_id,
                action.effectiveness_checked_at) == (None, None, None)
        service.update_action(manager, action, status="done")
        service.change_status(manager, record, "verification")
        assert service.closure_gaps(record) == [
            "“corrective 0” has not been checked for effectiveness"]
        with pytest.raises(service.RecordError, match="needs a written justification"):
            service.change_status(manager, record, "closed")
    assert ("effectiveness", "“corrective 0”: effective", "“corrective 0”: to be checked again",
            world.users["manager1"]) in history_of(world, KEY)
    assert status_of(world, KEY) == "verification"
    page = client_for(world, "manager1").get(record_url(world, KEY)).get_data(as_text=True)
    assert "to be checked again" in page and "will need a written justification" in page


@pytest.mark.parametrize("rework", [False, True], ids=["cancelled", "reworked then cancelled"])
def test_a_corrective_action_judged_not_effective_then_cancelled_is_still_a_gap(world, rework):
    from qalitel.records import service

    bring_to(world, KEY, "treatment", (("corrective", "done", True),
                                       ("corrective", "done", False)))
    with world.app.test_request_context(headers=EN), world.context():
        manager = world.user("manager1")
        record, bad = _record_and(world, KEY, f"{KEY}-1")
        if rework:
            service.update_action(manager, bad, status="in_progress")
            assert bad.effective is False  # a negative verdict stays the last word
        service.update_action(manager, bad, status="cancelled")
        service.change_status(manager, record, "verification")
        assert service.closure_gaps(record) == [
            "“corrective 1” was judged not effective, then cancelled"]
    manager = client_for(world, "manager1")
    url = record_url(world, KEY)
    refused = post(manager, f"{url}/status", {"to_status": "closed"})
    assert refused.status_code == 400 and b"then cancelled" in refused.data
    assert status_of(world, KEY) == "verification"
    assert post(manager, f"{url}/status", {"to_status": "closed",
                                           "justification": "Replaced by action 0"}
                ).status_code == 303
    assert status_of(world, KEY) == "closed"


# ------------------------------------------------------------------ assignee


def _assignees_may_close(world) -> None:
    from qalitel.records import service
    from qalitel.records.models import DEFAULT_RULES, WORKFLOW_STEPS

    with world.app.test_request_context(headers=EN), world.context():
        rules = {step: DEFAULT_RULES[step] for step in WORKFLOW_STEPS}
        rules["closed"] = ("manager", "assignee")
        service.save_rules(world.user("admin"), rules)


def _is_record_form(form) -> bool:
    return {"title", "severity", "origin"} <= form.names()


def test_a_plain_author_cannot_make_themselves_assignee(world):
    from qalitel.records import service

    _assignees_may_close(world)
    key = "by_user1"  # written by user1, a plain user; nobody assigned
    with world.app.test_request_context(headers=EN), world.context():
        record, _ = _record_and(world, key)
        with pytest.raises(service.PermissionDenied):
            service.update_nonconformity(world.user("user1"), record,
                                         assignee=world.users["user1"])
    user1 = client_for(world, "user1")
    edit = f"{record_url(world, key)}/edit"
    page = user1.get(edit).get_data(as_text=True)
    assert "assignee" not in form_of(page, _is_record_form).names()  # shown, disabled
    assert "Only managers, admins and the assignee change the assignee." in page
    before = snapshot(world, key)
    assert submit_untouched(user1, edit, _is_record_form).status_code == 303
    assert snapshot(world, key) == before
    forged = form_of(user1.get(edit).get_data(as_text=True), _is_record_form).data(
        assignee=str(world.users["user1"]), title="Mine now")
    assert user1.post(edit, data=forged).status_code == 303
    with world.app.app_context(), world.context():
        record, _ = _record_and(world, key)
        assert (record.title, record.assignee_id) == ("Mine now", None)
        with pytest.raises(service.PermissionDenied):
            service.change_status(world.user("user1"), record, "analysis")


def test_a_plain_user_cannot_create_a_record_assigned_to_themselves(world):
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    user1 = client_for(world, "user1")
    base = f"/t/{world.slug}/records/new"
    with world.app.app_context(), world.context():
        count = len(tdb.execute(select(NonConformity.id)).all())
    refused = submit_untouched(user1, base, _is_record_form, title="Self-assigned",
                               assignee=str(world.users["user1"]))
    assert refused.status_code == 400
    assert b"only managers and admins may make themselves the assignee" in refused.data
    other = submit_untouched(user1, base, _is_record_form, title="For the manager",
                             assignee=str(world.users["manager1"]))
    assert other.status_code == 303
    with world.app.app_context(), world.context():
        assert len(tdb.execute(select(NonConformity.id)).all()) == count + 1


def test_the_assignee_hands_over_and_managers_assign_anyone(world):
    from qalitel.records import service

    _assignees_may_close(world)
    user1 = client_for(world, "user1")
    edit = f"{record_url(world, KEY)}/edit"
    assert "assignee" in form_of(user1.get(edit).get_data(as_text=True), _is_record_form).names()
    assert submit_untouched(user1, edit, _is_record_form).status_code == 303
    handed = submit_untouched(user1, edit, _is_record_form, assignee=str(world.users["user2"]))
    assert handed.status_code == 303
    with world.app.test_request_context(headers=EN), world.context():
        record, _ = _record_and(world, KEY)
        assert record.assignee_id == world.users["user2"]
        with pytest.raises(service.PermissionDenied):
            service.update_nonconformity(world.user("user1"), record,
                                         assignee=world.users["user1"])
        service.update_nonconformity(world.user("manager1"), record,
                                     assignee=world.users["user1"])
        assert record.assignee_id == world.users["user1"]


# ------------------------------------------------------------------ concurrent writers


def _lock_watcher(world):
    """A connection of its own (the tenant's pool is busy with the two writers) counting the
    sessions of the tenant's database that wait on a lock."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    with world.app.app_context(), world.context():
        from tenants.context import tdb

        url = tdb.get_bind().url
    engine = create_engine(url, poolclass=NullPool)

    def waiting() -> int:
        with engine.connect() as conn:
            return conn.execute(sql("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                    "current_database() AND wait_event_type = 'Lock'")
                                ).scalar_one()
    return engine, waiting


def _hold_the_closer(world, monkeypatch, url: str) -> tuple[threading.Thread, threading.Event,
                                                            dict]:
    """Start closing ``url`` in a thread, held after its checks until the event is set."""
    from qalitel.records.service import workflow
    from tests.conftest import csrf_token

    checked, go, out = threading.Event(), threading.Event(), {}
    real = workflow._record_step

    def held(*args, **kwargs):
        checked.set()
        assert go.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(workflow, "_record_step", held)
    closer = client_for(world, "manager1")
    token = csrf_token(closer, url)
    thread = threading.Thread(target=lambda: out.setdefault("close", closer.post(
        f"{url}/status", data={"csrf_token": token, "to_status": "closed"}).status_code))
    thread.start()
    assert checked.wait(60)
    return thread, go, out


def _in_thread(fn) -> tuple[threading.Thread, dict]:
    out: dict = {}
    thread = threading.Thread(target=lambda: out.setdefault("status", fn()))
    thread.start()
    return thread, out


def _release_once_blocked(world, thread: threading.Thread, go: threading.Event) -> None:
    """Let the closer go once ``thread`` waits on a row lock (or has finished: no lock)."""
    engine, waiting = _lock_watcher(world)
    try:
        while thread.is_alive() and not waiting():
            thread.join(0.05)
    finally:
        go.set()
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite: one writer
@pytest.mark.parametrize("move", ["add an action", "rework the action"])
def test_closing_and_changing_actions_at_once_cannot_both_succeed(world, monkeypatch, backend,
                                                                  move):
    from qalitel.records.models import Action
    from tenants.context import tdb

    key = "other"
    bring_to(world, key, "verification", (("corrective", "done", True),))
    url = record_url(world, key)
    closer, go, out = _hold_the_closer(world, monkeypatch, url)
    adder = client_for(world, "manager2")
    if move == "add an action":
        data, target = {"title": "late one", "kind": "corrective", "status": "planned",
                        "owner": world.users["manager2"]}, f"{url}/actions/new"
    else:
        target = f"/t/{world.slug}/actions/{world.actions[f'{key}-0']}/edit"
        page = adder.get(target).get_data(as_text=True)
        data = form_of(page, lambda f: "kind" in f.names()).data(status="in_progress")
    from tests.conftest import csrf_token

    token = csrf_token(adder, url)
    payload = {**data, "csrf_token": token}
    other, result = _in_thread(lambda: adder.post(target, data=payload).status_code)
    _release_once_blocked(world, other, go)
    closer.join(60)
    other.join(60)
    assert out["close"] == 303 and result["status"] == 423, (out, result)
    with world.app.app_context(), world.context():
        rows = tdb.execute(select(Action.title, Action.status).where(
            Action.record_id == world.records[key])).all()
    assert status_of(world, key) == "closed"
    assert rows == [("corrective 0", "done")]
