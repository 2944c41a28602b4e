"""Visibility is enforced in queries, for every profile: by id, list, search, CSV, dashboard
counts and action lists. Out-of-scope ids answer 404, whatever the page."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.records_world import EXPECTED, EXPECTED_ACTIONS, build_world, client_for

PROFILES = sorted(EXPECTED)


@pytest.fixture
def world(app, password_hash):
    return build_world(app, password_hash)


def _client(world, profile):
    return client_for(world, profile)


def _titles(html: str) -> set[str]:
    """Record keys shown in a page (titles are '<key> title')."""
    return set(re.findall(r">([a-z_0-9]+) title<", html))


def _csv_keys(data: bytes) -> set[str]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    return {row[1].removesuffix(" title") for row in rows[1:]}


def test_service_level_visibility(world):
    """The where clause itself, outside any request, for every profile."""
    from sqlalchemy import select

    from qalitel.records.models import Action, NonConformity
    from qalitel.records.visibility import action_visibility, record_visibility
    from tenants.context import tdb

    by_id = {v: k for k, v in world.records.items()}
    actions_by_id = {v: k for k, v in world.actions.items()}
    with world.app.app_context(), world.context():
        for profile in PROFILES:
            user = world.user(profile)
            ids = tdb.execute(select(NonConformity.id).where(record_visibility(user))).scalars()
            assert {by_id[i] for i in ids} == EXPECTED[profile], profile
            ids = tdb.execute(select(Action.id).where(action_visibility(user))).scalars()
            assert {actions_by_id[i] for i in ids} == EXPECTED_ACTIONS[profile], profile


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_sees_only_its_scope(world, profile):
    client = _client(world, profile)
    expected = EXPECTED[profile]
    base = f"/t/{world.slug}"

    # by id: detail, edit form, new-action form, CSV of its actions
    for key, record_id in world.records.items():
        page = client.get(f"{base}/records/{record_id}")
        if key in expected:
            assert page.status_code == 200, (profile, key)
            assert f"{key} body".encode() in page.data
        else:
            assert page.status_code == 404, (profile, key)
            assert f"{key} body".encode() not in page.data
            assert client.get(f"{base}/records/{record_id}/edit").status_code == 404
            assert client.get(f"{base}/records/{record_id}/actions/new").status_code == 404

    # list (all on one page) and search
    listing = client.get(f"{base}/records/?per_page=100")
    assert listing.status_code == 200
    assert _titles(listing.get_data(as_text=True)) == expected
    found = client.get(f"{base}/records/?q=title&per_page=100")
    assert _titles(found.get_data(as_text=True)) == expected
    for key in world.records:
        hit = client.get(f"{base}/records/", query_string={"q": f"{key} body"})
        assert (f">{key} title<" in hit.get_data(as_text=True)) == (key in expected)
        by_number = client.get(f"{base}/records/", query_string={"q": f"NC-{world.numbers[key]}"})
        assert (f">{key} title<" in by_number.get_data(as_text=True)) == (key in expected)

    # CSV export of the same list
    export = client.get(f"{base}/records/export.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert _csv_keys(export.data) == expected

    # dashboard counts: every visible record is open
    dashboard = client.get(f"{base}/").get_data(as_text=True)
    counts = re.findall(r'<span class="stat">(\d+)</span>', dashboard)
    assert int(counts[0]) == len(expected)

    # actions: by id, list, CSV
    expected_actions = EXPECTED_ACTIONS[profile]
    for key, action_id in world.actions.items():
        status = client.get(f"{base}/actions/{action_id}").status_code
        assert status == (200 if key in expected_actions else 404), (profile, key)
    actions_page = client.get(f"{base}/actions/?per_page=100").get_data(as_text=True)
    titles = set(re.findall(r'/actions/\d+">([^<]+)</a>', actions_page))
    names = {"overdue_user1": "action_user1 overdue", "hr": "hr action",
             "standalone_manager1": "standalone manager1", "standalone_user2": "standalone user2"}
    assert titles == {names[k] for k in expected_actions}
    rows = list(csv.reader(io.StringIO(
        client.get(f"{base}/actions/export.csv").data.decode("utf-8-sig"))))
    assert {row[1] for row in rows[1:]} == {names[k] for k in expected_actions}


def test_out_of_scope_writes_answer_404(world):
    """Forged ids on every write endpoint: the record or action is not in the user's scope."""
    client = _client(world, "user1")
    base = f"/t/{world.slug}"
    from tests.conftest import csrf_token

    token = csrf_token(client, f"{base}/records/new")
    hidden = world.records["other"]
    for path, data in (
        (f"/records/{hidden}/edit", {"title": "pwned", "detected_on": "2024-01-01"}),
        (f"/records/{hidden}/status", {"to_status": "analysis"}),
        (f"/records/{hidden}/shares", {"user": world.users["user1"]}),
        (f"/records/{hidden}/shares/{world.users['manager1']}/remove", {}),
        (f"/records/{hidden}/actions/new", {"title": "x", "kind": "corrective"}),
        (f"/actions/{world.actions['hr']}/edit", {"title": "pwned"}),
        (f"/actions/{world.actions['standalone_manager1']}/effectiveness",
         {"effective": "yes"}),
    ):
        response = client.post(base + path, data={"csrf_token": token, **data})
        assert response.status_code == 404, path
    with world.app.app_context(), world.context():
        from qalitel.records.models import NonConformity
        from tenants.context import tdb

        assert tdb.get(NonConformity, hidden).title == "other title"


def test_confidential_folder_clearance_is_live(world):
    """Granting, then revoking, clearance changes what a manager sees at once."""
    manager = _client(world, "manager1")
    admin = _client(world, "admin")
    base = f"/t/{world.slug}"
    legal = world.records["legal"]
    assert manager.get(f"{base}/records/{legal}").status_code == 404
    # a manager cannot open the folder page of a confidential folder they are not cleared for
    assert manager.get(f"{base}/folders/{world.folders['Legal']}").status_code == 404
    from tests.conftest import csrf_token

    token = csrf_token(admin, f"{base}/folders/{world.folders['Legal']}")
    granted = admin.post(f"{base}/folders/{world.folders['Legal']}/clearances",
                         data={"csrf_token": token, "user": world.users["manager1"],
                               "group": 0})
    assert granted.status_code == 303
    assert manager.get(f"{base}/records/{legal}").status_code == 200
    with world.app.app_context(), world.context():
        from sqlalchemy import select

        from qalitel.records.models import FolderClearance
        from tenants.context import tdb

        clearance = tdb.execute(select(FolderClearance.id).where(
            FolderClearance.user_id == world.users["manager1"])).scalar_one()
    revoked = admin.post(f"{base}/folders/{world.folders['Legal']}/clearances/{clearance}/revoke",
                         data={"csrf_token": token})
    assert revoked.status_code == 303
    assert manager.get(f"{base}/records/{legal}").status_code == 404


def test_plain_users_cannot_administer_folders(world):
    client = _client(world, "user1")
    base = f"/t/{world.slug}"
    assert client.get(f"{base}/folders/").status_code == 403
    assert client.get(f"{base}/folders/{world.folders['General']}").status_code == 403
    assert b"/folders/" not in client.get(f"{base}/records/").data


def test_other_tenant_ids_are_not_found(world, password_hash):
    """A record id that exists only in another tenant is not found here, for an admin."""
    from qalitel.records import service

    other = build_world(world.app, password_hash, slug="other")
    with world.app.app_context(), other.context():
        extra = service.create_nonconformity(other.user("admin"), "only in other",
                                             "secret of other")
    assert extra.id not in world.records.values()
    client = _client(world, "admin")
    page = client.get(f"/t/{world.slug}/records/{extra.id}")
    assert page.status_code == 404 and b"secret of other" not in page.data
    listing = client.get(f"/t/{world.slug}/records/?q=other&per_page=100")
    assert b"only in other" not in listing.data
    assert client.get(f"/t/other/records/{extra.id}").status_code == 302  # not signed in there
