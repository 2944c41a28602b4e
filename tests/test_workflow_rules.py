"""Who may move a record to each status is a rule of the tenant, edited by a client admin
at /t/<slug>/admin/workflow (a form that round-trips); managers always keep the outcomes
and reopening. Hostile input on that form and on the status form is a 4xx that changes
nothing. Existing tenants upgrade to t0009_closure_rules with their rows intact."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import csrf_token
from tests.html_forms import form_of, submit_untouched
from tests.records_world import build_world, client_for
from tests.workflow_helpers import bring_to, post, record_url, snapshot, status_of

KEY = "assigned_user1"  # assigned to user1 (a plain user)


@pytest.fixture
def world(app, password_hash):
    return build_world(app, password_hash)


def rules_url(world) -> str:
    return f"/t/{world.slug}/admin/workflow"


def is_rules_form(form) -> bool:
    return {"closed", "reopen"} <= form.names()


def test_the_rules_page_is_for_admins_and_round_trips(world):
    admin = client_for(world, "admin")
    home = admin.get(f"/t/{world.slug}/").get_data(as_text=True)
    assert f'href="{rules_url(world)}"' in home
    page = admin.get(rules_url(world)).get_data(as_text=True)
    defaults = _fields(page)
    assert defaults["closed"] == ["manager"] and defaults["analysis"] == ["assignee", "manager"]
    before = snapshot(world, KEY)
    response = submit_untouched(admin, rules_url(world), is_rules_form)
    assert response.status_code == 303
    assert snapshot(world, KEY) == before  # no rule row written: the defaults hold
    for profile in ("manager1", "user1"):
        client = client_for(world, profile)
        assert rules_url(world) not in client.get(f"/t/{world.slug}/").get_data(as_text=True)
        assert client.get(rules_url(world)).status_code == 403
        assert post(client, rules_url(world), defaults).status_code == 403


def _fields(page: str) -> dict[str, list[str]]:
    """The rules form's fields as a browser sends them, without its CSRF token."""
    data = form_of(page, is_rules_form).data()
    data.pop("csrf_token")
    return data


def test_a_rule_changed_by_the_admin_takes_effect(world):
    admin = client_for(world, "admin")
    data = _fields(admin.get(rules_url(world)).get_data(as_text=True))
    data.update(closed=["assignee", "manager"], analysis=["manager"])
    assert _post_rules(admin, world, data).status_code == 303
    page = admin.get(rules_url(world)).get_data(as_text=True)
    assert _fields(page)["closed"] == ["assignee", "manager"]
    assert submit_untouched(admin, rules_url(world), is_rules_form).status_code == 303
    assert snapshot(world, KEY)["rules"] == sorted([
        ("analysis", "manager"), ("treatment", "assignee"), ("treatment", "manager"),
        ("verification", "assignee"), ("verification", "manager"), ("closed", "assignee"),
        ("closed", "manager"), ("unfounded", "manager"), ("reopen", "manager")])

    user1 = client_for(world, "user1")
    url = record_url(world, KEY)
    refused = post(user1, f"{url}/status", {"to_status": "analysis"})
    assert refused.status_code == 403
    assert "Only managers may move this record to “Analysis”.".encode() in refused.data
    assert status_of(world, KEY) == "open"
    bring_to(world, KEY, "verification", (("corrective", "done", True),))
    assert 'value="closed"' in user1.get(url).get_data(as_text=True)
    assert post(user1, f"{url}/status", {"to_status": "closed"}).status_code == 303
    assert status_of(world, KEY) == "closed"


def _post_rules(client, world, data, *, with_token=True):
    token = {"csrf_token": csrf_token(client, rules_url(world))} if with_token else {}
    return client.post(rules_url(world), data={**token, **data})


HOSTILE_RULES = {
    "unknown role": {"closed": ["manager", "everybody"]},
    "not a list of roles": {"analysis": ["manager\x00"]},
    "managers removed from closing": {"closed": ["assignee"]},
    "managers removed from reopening": {"reopen": []},
    "nobody for a move": {"treatment": []},
}


@pytest.mark.parametrize("case", list(HOSTILE_RULES))
def test_hostile_input_on_the_rules_form_changes_nothing(world, case):
    admin = client_for(world, "admin")
    base = _fields(admin.get(rules_url(world)).get_data(as_text=True))
    before = snapshot(world, KEY)
    data = {**base, **HOSTILE_RULES[case]}
    response = _post_rules(admin, world, data)
    assert 400 <= response.status_code < 500, response.status_code
    assert snapshot(world, KEY) == before


def test_the_rules_form_without_csrf_changes_nothing(world):
    admin = client_for(world, "admin")
    before = snapshot(world, KEY)
    response = _post_rules(admin, world, {"closed": ["assignee", "manager"]}, with_token=False)
    assert response.status_code == 400
    assert snapshot(world, KEY) == before


def test_refusals_of_the_rules_form_say_why(world):
    admin = client_for(world, "admin")
    base = _fields(admin.get(rules_url(world)).get_data(as_text=True))
    kept = _post_rules(admin, world, {**base, "closed": ["assignee"]})
    assert kept.status_code == 400 and b"managers always keep this move" in kept.data
    empty = _post_rules(admin, world, {**base, "treatment": []})
    assert empty.status_code == 400 and b"at least one role must be allowed" in empty.data


HOSTILE_STATUS = {
    "unknown status": {"to_status": "deleted"},
    "status of another list": {"to_status": "done"},
    "oversize justification": {"to_status": "unfounded", "justification": "x" * 2001},
    "oversize comment": {"to_status": "analysis", "comment": "x" * 2001},
    "control character": {"to_status": "unfounded", "justification": "ok\x00"},
    "no status": {"comment": "hello"},
}


@pytest.mark.parametrize("case", list(HOSTILE_STATUS))
def test_hostile_input_on_the_status_form_changes_nothing(world, case):
    manager = client_for(world, "manager1")
    url = record_url(world, KEY)
    before = snapshot(world, KEY)
    response = post(manager, f"{url}/status", HOSTILE_STATUS[case])
    assert 400 <= response.status_code < 500, response.status_code
    assert snapshot(world, KEY) == before


def test_the_status_and_reopen_forms_without_csrf_change_nothing(world):
    manager = client_for(world, "manager1")
    url = record_url(world, KEY)
    before = snapshot(world, KEY)
    assert manager.post(f"{url}/status", data={"to_status": "unfounded",
                                               "justification": "x"}).status_code == 400
    assert manager.post(f"{url}/reopen", data={"reason": "x"}).status_code in (400, 409)
    assert snapshot(world, KEY) == before


def test_existing_rows_survive_the_upgrade(backend, tmp_path):
    """A tenant at t0008 with a closed record, its action and steps upgrades to head:
    the record stays closed (read-only now), nothing planned nor justified (NULL)."""
    from tenants import migrations
    from tests.test_alembic import scratch_engine

    with scratch_engine(backend, tmp_path) as engine:
        with engine.begin() as conn:
            migrations.upgrade(conn, "tenant", "t0008")
            conn.execute(text(
                "INSERT INTO users (id, email, name, password_hash, profile, session_token, "
                "uid) VALUES (1, 'm@x.example', 'M', 'h', 'manager', 't', 'u1')"))
            conn.execute(text(
                "INSERT INTO nonconformities (id, number, title, description, status, "
                "created_by_id) VALUES (1, 1, 'Old', '', 'closed', 1), "
                "(2, 2, 'Open one', '', 'open', 1)"))
            conn.execute(text(
                "INSERT INTO actions (id, record_id, kind, title, description, status) "
                "VALUES (1, 1, 'corrective', 'Fix', '', 'done')"))
            conn.execute(text(
                "INSERT INTO nonconformity_status_changes (record_id, from_status, "
                "to_status, changed_by_id, comment) VALUES (1, 'verification', 'closed', 1, "
                "'ok')"))
        with engine.begin() as conn:
            assert migrations.upgrade(conn, "tenant") == migrations.head("tenant")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT id, status FROM nonconformities ORDER BY id")
                                ).all() == [(1, "closed"), (2, "open")]
            assert conn.execute(text(
                "SELECT title, effectiveness_due_on, effectiveness_criteria FROM actions")
            ).all() == [("Fix", None, None)]
            assert conn.execute(text(
                "SELECT to_status, comment, justification FROM nonconformity_status_changes")
            ).all() == [("closed", "ok", None)]
            assert conn.execute(text("SELECT count(*) FROM workflow_rules")).scalar() == 0
            conn.execute(text("UPDATE nonconformities SET status = 'unfounded' WHERE id = 2"))
        with pytest.raises(Exception, match="(?i)check"), engine.begin() as conn:
            conn.execute(text("UPDATE nonconformities SET status = 'deleted' WHERE id = 2"))


def test_hostile_input_on_the_reopen_form_changes_nothing(world):
    from tests.workflow_helpers import close

    close(world, KEY)
    manager = client_for(world, "manager1")
    url = record_url(world, KEY)
    before = snapshot(world, KEY)
    for data in ({"reason": "x" * 2001}, {"reason": "ok\x00"}, {"reason": ""}, {}):
        response = post(manager, f"{url}/reopen", data)
        assert response.status_code == 400, (data, response.status_code)
    assert snapshot(world, KEY) == before and status_of(world, KEY) == "closed"


def test_a_refused_move_is_explained_in_french(world):
    bring_to(world, KEY, "verification", (("corrective", "done", True),))
    user1 = client_for(world, "user1")
    user1.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr"
    refused = post(user1, f"{record_url(world, KEY)}/status", {"to_status": "closed"})
    assert refused.status_code == 403
    assert ("Seuls les managers peuvent faire passer cette fiche au statut "
            "«\u00a0Clôturée\u00a0».") in refused.get_data(as_text=True)
