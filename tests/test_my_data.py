"""The user's rights on both backends: the personal export is complete (checked against a
scan of every table and column that can refer to the person), the login history, the My
data page with rectification, and hostile input."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import csrf_token, login
from tests.my_data_world import build_rich_world, client_for, scan_for, visible_to


@pytest.fixture
def world(app, password_hash):
    return build_rich_world(app, password_hash)


@pytest.mark.parametrize("who", ["user1", "manager1", "admin"])
def test_export_holds_everything_about_the_person(world, who):
    from qalitel.my_data.collect import personal_data
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        user = world.user(who)
        data = personal_data(tdb, user.id, {"lang": "en"})
        scan = scan_for(tdb, user.id, user.name, user.email, visible_to(tdb, user.id))
    assert sum(len(rows) for rows in scan.values()) > 5
    for table, rows in scan.items():
        for row in rows:
            assert row in data[table], f"{table} row {row} missing from the export of {who}"
    assert data["preferences"] == [{"lang": "en"}]
    assert "password_hash" not in data["users"][0]


def test_export_of_user1_covers_every_kind(world):
    from qalitel.my_data.collect import personal_data
    from qalitel.records import service
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        # the history of "other" names user1, but user1 may no longer read "other": a
        # history row of their own record, then
        mine = tdb.get(NonConformity, world.records["by_user1"])
        service.update_nonconformity(world.user("user1"), mine, description="Seen again")
    with world.app.app_context(), world.context():
        data = personal_data(tdb, world.users["user1"])
    for section in ("users", "groups_of_the_user", "nonconformities", "actions",
                    "nonconformity_status_changes", "nonconformity_history", "action_history",
                    "attachments", "login_events", "folder_clearances", "nonconformity_shares",
                    "records_shared_with_the_user"):
        assert data[section], section
    assert [g["name"] for g in data["groups_of_the_user"]] == ["Night shift"]
    outcomes = sorted(e["outcome"] for e in data["login_events"])
    assert outcomes == ["failure", "success"]
    assert {e["address"] for e in data["login_events"]} == {"127.0.0.0/24"}


def test_login_addresses_are_truncated():
    from qalitel.my_data.logins import truncate_address

    assert truncate_address("203.0.113.57") == "203.0.113.0/24"
    assert truncate_address("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert truncate_address("not an address") is None
    assert truncate_address(None) is None


def test_page_shows_counts_and_admin_fields(world):
    client = client_for(world, "user1")
    page = client.get(f"/t/{world.slug}/my-data")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Non-conformities about you" in html and "Changed by your administrator" in html
    assert world.emails["user1"] in html
    assert f'href="/t/{world.slug}/my-data"' in client.get(f"/t/{world.slug}/").get_data(
        as_text=True)


def test_my_data_needs_sign_in(world):
    response = world.app.test_client().get(f"/t/{world.slug}/my-data")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def _user_row(world, key):
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        user = world.user(key)
        tdb.refresh(user)
        return user.name, user.locale, user.updated_at


def test_rectification_round_trip(world):
    client = client_for(world, "user1")
    url = f"/t/{world.slug}/my-data/profile"
    before = _user_row(world, "user1")
    token = csrf_token(client, f"/t/{world.slug}/my-data")
    untouched = client.post(url, data={"csrf_token": token, "name": before[0],
                                       "locale": before[1] or "fr"})
    assert untouched.status_code == 302
    assert _user_row(world, "user1") == before
    saved = client.post(url, data={"csrf_token": token, "name": "  Uma Acme ",
                                   "locale": "fr"})
    assert saved.status_code == 302
    assert _user_row(world, "user1")[:2] == ("Uma Acme", "fr")


@pytest.mark.parametrize("name", ["Eve\x00", "x" * 201, "Eve\x1b[31m", "Eve\u202e", "   "])
def test_rectification_refuses_hostile_names(world, name):
    client = client_for(world, "user1")
    before = _user_row(world, "user1")
    token = csrf_token(client, f"/t/{world.slug}/my-data")
    response = client.post(f"/t/{world.slug}/my-data/profile",
                           data={"csrf_token": token, "name": name, "locale": "fr"})
    assert response.status_code == 400
    assert "field-error" in response.get_data(as_text=True)
    assert _user_row(world, "user1") == before


def test_rectification_refuses_unknown_language_and_missing_csrf(world):
    client = client_for(world, "user1")
    before = _user_row(world, "user1")
    token = csrf_token(client, f"/t/{world.slug}/my-data")
    url = f"/t/{world.slug}/my-data/profile"
    assert client.post(url, data={"csrf_token": token, "name": "New",
                                  "locale": "xx"}).status_code == 400
    assert client.post(url, data={"name": "New", "locale": "fr"}).status_code == 400
    assert _user_row(world, "user1") == before


def test_sign_in_records_success_and_failure_of_known_accounts_only(world):
    from sqlalchemy import func

    from qalitel.my_data.models import LoginEvent
    from tenants.context import tdb

    def count():
        with world.app.app_context(), world.context():
            return tdb.execute(select(func.count()).select_from(LoginEvent)).scalar_one()

    before = count()
    client = world.app.test_client()
    assert login(client, world.slug, "nobody@acme.example", "whatever!!").status_code == 401
    assert count() == before
    assert login(client, world.slug, world.emails["user2"], "wrong one!!").status_code == 401
    assert count() == before + 1


def test_export_lists_the_maintenance_accesses_that_touched_the_person(world):
    from core.db import db
    from maintenance import audit
    from qalitel.my_data.collect import personal_data
    from tenants.context import tdb
    from tenants.registry import Tenant

    uid = world.handle.uid
    staff = {"actor_kind": "staff", "actor_name": "Éric Ingénieur",
             "actor_email": "eric@scoqi.example"}
    with world.app.app_context():
        tenant_id = db.session.execute(select(Tenant.id).filter_by(uid=uid)).scalar_one()
        for detail in ({"what": "record", "table": "users",
                        "record_id": str(world.users["user1"])},
                       {"what": "record", "table": "nonconformities",
                        "record_id": str(world.records["by_user1"])},
                       {"what": "record", "table": "nonconformities",
                        "record_id": str(world.records["legal"])},
                       {"what": "rows", "table": "users", "page": 1},
                       {"what": "rows", "table": "folders", "page": 1}):
            audit.append(tenant_id, "view", detail=detail, **staff)
    with world.app.app_context(), world.context():
        data = personal_data(tdb, world.users["user1"], tenant_uid=uid)
    seen = [(e["detail"]["table"], e["detail"].get("record_id")) for e in
            data["maintenance_accesses"]]
    assert seen == [("users", str(world.users["user1"])),
                    ("nonconformities", str(world.records["by_user1"])), ("users", None)]
    assert all(e["actor_name"] == "Éric Ingénieur" for e in data["maintenance_accesses"])
