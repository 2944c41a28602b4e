"""Every edit form changes exactly the fields the person changed: loading an edit page and
submitting it untouched, as a browser would, changes nothing (history included), whoever
edits and whatever the stored values are (a suspended assignee, a folder the editor is not
cleared for). Plus the regressions: a confidential record keeps its folder, a user who marks
their own action done still sees it."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from tests.html_forms import form_of, submit_untouched
from tests.records_world import build_world, client_for


@pytest.fixture
def world(app, password_hash):
    world = build_world(app, password_hash)
    from qalitel.records import service

    with app.app_context(), world.context():
        record = service.create_nonconformity(
            world.user("manager1"), "Multi-line", "first line\nsecond line\n\tindented",
            cause_analysis="cause\none", folder_id=world.folders["General"],
            assignee_id=world.users["user1"], detected_on=date(2024, 2, 29))
        world.records["multiline"] = record.id
    return world


def is_record_form(form) -> bool:
    return {"title", "severity", "folder"} <= form.names()


def is_action_form(form) -> bool:
    return {"title", "kind", "owner"} <= form.names()


def _columns(obj) -> dict:
    return {c.key: getattr(obj, c.key) for c in type(obj).__table__.columns}


def record_state(world, key: str) -> dict:
    from qalitel.records.models import NonConformity, RecordHistory, RecordShare, StatusChange
    from tenants.context import tdb

    record_id = world.records[key]
    with world.app.app_context(), world.context():
        state = _columns(tdb.get(NonConformity, record_id))
        for model in (RecordHistory, StatusChange, RecordShare):
            state[model.__name__] = tdb.execute(select(func.count()).select_from(model).where(
                model.record_id == record_id)).scalar()
        return state


def action_state(world, key: str) -> dict:
    from qalitel.records.models import Action
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        return _columns(tdb.get(Action, world.actions[key]))


def suspend(world, key: str) -> None:
    from qalitel.users.service import suspend as suspend_user

    with world.app.app_context(), world.context():
        suspend_user(world.user(key))


RECORD_CASES = [
    ("admin", "hr"),                # confidential folder, admin
    ("manager2", "hr"),             # confidential folder, cleared through a group
    ("manager1", "other"),          # plain folder, no assignee
    ("user1", "assigned_user1"),    # a user editing what is assigned to them
    ("user2", "legal_user2"),       # assignee not cleared for the record's folder
    ("manager1", "multiline"),      # multi-line texts, a leap day
]


@pytest.mark.parametrize(("editor", "key"), RECORD_CASES)
def test_untouched_record_form_changes_nothing(world, editor, key):
    before = record_state(world, key)
    client = client_for(world, editor)
    url = f"/t/{world.slug}/records/{world.records[key]}/edit"
    response = submit_untouched(client, url, is_record_form)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    assert record_state(world, key) == before


def test_untouched_record_form_keeps_a_suspended_assignee_and_detector(world):
    suspend(world, "user2")
    suspend(world, "user1")  # detector of by_user1
    for key in ("legal_user2", "by_user1"):
        before = record_state(world, key)
        client = client_for(world, "admin")
        response = submit_untouched(client, f"/t/{world.slug}/records/{world.records[key]}/edit",
                                    is_record_form)
        assert response.status_code == 303, response.get_data(as_text=True)[:2000]
        assert record_state(world, key) == before


def test_confidential_record_keeps_its_folder_when_its_text_is_edited(world):
    """The reported case: a one-word change to the description moved a confidential record
    out of its folder and reset its detector, and an uncleared manager could then read it."""
    key = "hr"
    manager1 = client_for(world, "manager1")
    url = f"/t/{world.slug}/records/{world.records[key]}"
    assert manager1.get(url).status_code == 404
    before = record_state(world, key)
    response = submit_untouched(client_for(world, "manager2"), f"{url}/edit", is_record_form,
                                description="hr body, reworded")
    assert response.status_code == 303
    after = record_state(world, key)
    assert after["description"] == "hr body, reworded"
    assert after["RecordHistory"] == before["RecordHistory"] + 1  # the description only
    for column in ("folder_id", "detected_by_id", "assignee_id", "title", "severity"):
        assert after[column] == before[column], column
    assert manager1.get(url).status_code == 404


def test_uncleared_editor_sees_no_folder_name_and_cannot_move_the_record(world):
    client = client_for(world, "user2")
    url = f"/t/{world.slug}/records/{world.records['legal_user2']}/edit"
    page = client.get(url).get_data(as_text=True)
    assert "Legal" not in page and "Confidential folder" in page
    form = form_of(page, is_record_form)
    before = record_state(world, "legal_user2")
    moved = client.post(url, data=form.data(folder="0"))
    assert moved.status_code == 400
    assert "Legal" not in moved.get_data(as_text=True)
    assert record_state(world, "legal_user2") == before


ACTION_CASES = [
    ("user1", "overdue_user1"),            # owner, action created by a manager
    ("manager1", "standalone_manager1"),   # standalone
    ("admin", "hr"),                       # on a confidential record
]


@pytest.mark.parametrize(("editor", "key"), ACTION_CASES)
def test_untouched_action_form_changes_nothing(world, editor, key):
    before = action_state(world, key)
    client = client_for(world, editor)
    response = submit_untouched(client, f"/t/{world.slug}/actions/{world.actions[key]}/edit",
                                is_action_form)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    assert action_state(world, key) == before


def test_untouched_action_form_keeps_a_suspended_owner(world):
    suspend(world, "user2")
    before = action_state(world, "standalone_user2")
    client = client_for(world, "manager1")
    response = submit_untouched(
        client, f"/t/{world.slug}/actions/{world.actions['standalone_user2']}/edit",
        is_action_form)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    assert action_state(world, "standalone_user2") == before


def test_user_marks_their_own_action_done_and_still_sees_it(world):
    """The reported case: "saved", then a 404, because the form had reset the owner."""
    client = client_for(world, "user1")
    action_id = world.actions["overdue_user1"]
    before = action_state(world, "overdue_user1")
    response = submit_untouched(client, f"/t/{world.slug}/actions/{action_id}/edit",
                                is_action_form, status="done")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/actions/{action_id}")
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and "Changes saved." in page.get_data(as_text=True)
    after = action_state(world, "overdue_user1")
    assert after["status"] == "done" and after["completed_at"] is not None
    assert after["owner_id"] == before["owner_id"] == world.users["user1"]


def test_untouched_folder_form_changes_nothing(world):
    from qalitel.records.models import Folder, FolderClearance
    from tenants.context import tdb

    def state(folder_id):
        with world.app.app_context(), world.context():
            clearances = tdb.execute(select(func.count()).select_from(FolderClearance).where(
                FolderClearance.folder_id == folder_id)).scalar()
            return _columns(tdb.get(Folder, folder_id)), clearances

    for editor, name in (("admin", "Legal"), ("manager2", "HR"), ("manager1", "General")):
        folder_id = world.folders[name]
        before = state(folder_id)
        response = submit_untouched(
            client_for(world, editor), f"/t/{world.slug}/folders/{folder_id}",
            lambda f: "name" in f.names() and "user" not in f.names())
        assert response.status_code == 303, (editor, response.get_data(as_text=True)[:2000])
        assert state(folder_id) == before


def _user_state(world, key: str) -> dict:
    from qalitel.users.service import group_ids_of
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        user = world.user(key)
        tdb.refresh(user)
        return {**_columns(user), "groups": sorted(group_ids_of(user))}


@pytest.mark.parametrize("key", ["manager2", "user1", "admin"])
def test_untouched_user_form_changes_nothing(world, key):
    admin = client_for(world, "admin")  # signing in changes the admin's row: before the snapshot
    before = _user_state(world, key)
    response = submit_untouched(admin,
                                f"/t/{world.slug}/users/{world.users[key]}",
                                lambda f: "profile" in f.names())
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert _user_state(world, key) == before


def test_untouched_group_form_changes_nothing(world):
    from qalitel.users.models import Group
    from qalitel.users.service import member_ids
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        group_id = tdb.execute(select(Group.id).where(Group.name == "Quality team")).scalar_one()

    def state():
        with world.app.app_context(), world.context():
            group = tdb.get(Group, group_id)
            return _columns(group), sorted(member_ids(group))

    before = state()
    response = submit_untouched(client_for(world, "admin"),
                                f"/t/{world.slug}/users/groups/{group_id}",
                                lambda f: "name" in f.names())
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert state() == before and before[1] == [world.users["manager2"]]


def test_untouched_profile_name_form_changes_nothing(world):
    client = client_for(world, "user1")
    before = _user_state(world, "user1")
    response = submit_untouched(client, f"/t/{world.slug}/profile",
                                lambda f: (f.action or "").endswith("/profile/name"))
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert _user_state(world, "user1") == before


def test_legacy_values_the_rules_now_refuse_survive_an_untouched_edit(world):
    """Stored before today's rules (a zero-width space, refused now): leaving the field alone
    keeps it; the edit of another field goes through."""
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    legacy = "Legacy\u200btitle"
    with world.app.app_context(), world.context():
        tdb.get(NonConformity, world.records["other"]).title = legacy
        tdb.get(NonConformity, world.records["other"]).description = "old\u200bbody"
        world.user("user2").name = "Old\u200bname"
    manager = client_for(world, "manager1")
    url = f"/t/{world.slug}/records/{world.records['other']}/edit"
    before = record_state(world, "other")
    assert submit_untouched(manager, url, is_record_form).status_code == 303
    assert record_state(world, "other") == before
    assert submit_untouched(manager, url, is_record_form, severity="major").status_code == 303
    after = record_state(world, "other")
    assert (after["title"], after["severity"]) == (legacy, "major")
    admin = client_for(world, "admin")
    user_url = f"/t/{world.slug}/users/{world.users['user2']}"
    assert submit_untouched(admin, user_url, lambda f: "profile" in f.names(),
                            profile="manager").status_code == 302
    state = _user_state(world, "user2")
    assert (state["name"], state["profile"].value) == ("Old\u200bname", "manager")


# ------------------------------------------------------------------ record fields


def _with_fields(world) -> None:
    """Give "other" every record field (its product archived since) and an analysis."""
    from decimal import Decimal

    from qalitel.records.field_models import RecordAnalysis
    from qalitel.records.fields import catalog
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        admin = world.user("admin")
        product = catalog.add_entry(admin, "product", "Gear Z40")
        supplier = catalog.add_entry(admin, "supplier", "Forges de l'Est")
        record = tdb.get(NonConformity, world.records["other"])
        record.product_id, record.partner_id = product.id, supplier.id
        record.lot, record.quantity, record.quantity_unit = "L-07", Decimal("12.500"), "kg"
        record.immediate_action = "Sorted\r\nand quarantined"
        record.nq_cost = Decimal("1234.50")
        catalog.set_archived(admin, product, True)
        tdb.add(RecordAnalysis(record_id=record.id, why_1="Why?", because_1="Because\nso",
                               ishikawa_method="No instruction", main_cause="method"))


@pytest.mark.parametrize("editor", ["manager1", "admin"])
def test_untouched_record_and_analysis_forms_keep_every_record_field(world, editor):
    from qalitel.records.field_models import RecordAnalysis
    from tenants.context import tdb

    _with_fields(world)
    before = record_state(world, "other")
    assert before["quantity"] is not None and before["nq_cost"] is not None
    client = client_for(world, editor)
    url = f"/t/{world.slug}/records/{world.records['other']}"
    page = client.get(f"{url}/edit").get_data(as_text=True)
    assert "Gear Z40 (archived)" in page and "12.5" in page and "1234.50" in page
    assert submit_untouched(client, f"{url}/edit", is_record_form).status_code == 303
    assert record_state(world, "other") == before

    def analysis_state():
        with world.app.app_context(), world.context():
            row = tdb.get(RecordAnalysis, world.records["other"])
            return _columns(row)

    stored = analysis_state()
    response = submit_untouched(client, f"{url}/analysis",
                                lambda f: {"why_1", "main_cause"} <= f.names())
    assert response.status_code == 303
    assert analysis_state() == stored and record_state(world, "other") == before
