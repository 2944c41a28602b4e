"""Findings of the hostile review on records: a folder name answered "exists already" to
people not cleared for the folder of that name (an oracle for confidential names), and a
stale edit form reverted other people's changes."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.conftest import csrf_token
from tests.html_forms import form_of
from tests.records_world import build_world, client_for


@pytest.fixture
def world(app, password_hash):
    return build_world(app, password_hash)


def _folders_named(world, name: str) -> list[tuple[int, bool]]:
    from qalitel.records.models import Folder
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        return list(tdb.execute(select(Folder.id, Folder.confidential).where(
            func.lower(Folder.name) == name.lower()).order_by(Folder.id)).all())


def _create_folder(client, world, name: str):
    url = f"/t/{world.slug}/folders/"
    return client.post(url, data={"csrf_token": csrf_token(client, url), "name": name})


# ------------------------------------------------------------------ folder-name oracle


@pytest.mark.parametrize("name", ["Legal", "lEGAL"])
def test_a_hidden_confidential_name_is_a_free_name_for_an_uncleared_manager(world, name):
    manager1 = client_for(world, "manager1")  # not cleared for "Legal"
    hidden = _create_folder(manager1, world, name)
    assert hidden.status_code == 303, hidden.get_data(as_text=True)[:2000]
    free = _create_folder(manager1, world, "Purchasing")
    assert free.status_code == 303
    # the same answer as for a free name: created, nothing said about the other folder
    page = manager1.get(hidden.headers["Location"]).get_data(as_text=True)
    assert "exists already" not in page
    assert [c for _id, c in _folders_named(world, "Legal")] == [True, False]


def test_a_visible_name_still_collides(world):
    manager1 = client_for(world, "manager1")
    for name in ("General", "gENERAL"):
        response = _create_folder(manager1, world, name)
        assert response.status_code == 400
        assert "A folder with this name exists already." in response.get_data(as_text=True)
    manager2 = client_for(world, "manager2")  # cleared for "HR" through a group
    assert _create_folder(manager2, world, "hr").status_code == 400
    assert len(_folders_named(world, "HR")) == 1


def test_renaming_to_a_hidden_name_is_allowed_and_to_a_visible_one_refused(world):
    manager1 = client_for(world, "manager1")
    created = _create_folder(manager1, world, "Scratch")
    url = created.headers["Location"]
    page = manager1.get(url).get_data(as_text=True)
    form = form_of(page, lambda f: "name" in f.names() and "user" not in f.names())
    renamed = manager1.post(url, data=form.data(name="HR"))
    assert renamed.status_code == 303, renamed.get_data(as_text=True)[:2000]
    assert len(_folders_named(world, "HR")) == 2
    refused = manager1.post(url, data=form.data(name="General"))
    assert refused.status_code == 400
    assert "A folder with this name exists already." in refused.get_data(as_text=True)


def test_a_cleared_person_tells_twin_folders_apart_and_keeps_editing_them(world):
    """Two folders of one name: acceptable, the confidential one is marked in every list."""
    assert _create_folder(client_for(world, "manager1"), world, "Legal").status_code == 303
    admin = client_for(world, "admin")
    new_record = admin.get(f"/t/{world.slug}/records/new").get_data(as_text=True)
    assert "Legal (confidential)" in new_record and ">Legal</option>" in new_record
    folders = admin.get(f"/t/{world.slug}/folders/").get_data(as_text=True)
    assert folders.count(">Legal</a>") == 2
    # an untouched save of either twin goes through; renaming one onto the other does not
    for folder_id, _confidential in _folders_named(world, "Legal"):
        url = f"/t/{world.slug}/folders/{folder_id}"
        form = form_of(admin.get(url).get_data(as_text=True),
                       lambda f: "name" in f.names() and "user" not in f.names())
        assert admin.post(url, data=form.data()).status_code == 303
    assert _create_folder(admin, world, "Legal").status_code == 400


# ------------------------------------------------------------------ stale edit forms


def _open_form(client, url: str, which):
    page = client.get(url)
    assert page.status_code == 200
    return form_of(page.get_data(as_text=True), which)


def is_record_form(form) -> bool:
    return {"title", "severity", "folder", "version"} <= form.names()


def is_action_form(form) -> bool:
    return {"title", "kind", "owner", "version"} <= form.names()


def _record(world, key: str):
    from qalitel.records.models import NonConformity, RecordHistory
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        record = tdb.get(NonConformity, world.records[key])
        history = {(h.field, h.user_id, h.new_value) for h in tdb.execute(
            select(RecordHistory).where(RecordHistory.record_id == record.id)).scalars()}
        return {c.key: getattr(record, c.key) for c in record.__table__.columns}, history


def _action(world, key: str) -> dict:
    from qalitel.records.models import Action
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        action = tdb.get(Action, world.actions[key])
        return {c.key: getattr(action, c.key) for c in action.__table__.columns}


def test_a_stale_record_form_keeps_the_changes_made_meanwhile(world):
    """The reported case: manager1 fixes the title in a form opened before the admin changed
    severity and assignee; before the fix the submit reverted both, blamed on manager1."""
    url = f"/t/{world.slug}/records/{world.records['other']}/edit"
    manager1 = client_for(world, "manager1")
    stale = _open_form(manager1, url, is_record_form)
    admin = client_for(world, "admin")
    meanwhile = _open_form(admin, url, is_record_form)
    assert admin.post(url, data=meanwhile.data(
        severity="major", assignee=str(world.users["user1"]))).status_code == 303
    saved = manager1.post(url, data=stale.data(title="other title, fixed"))
    assert saved.status_code == 303, saved.get_data(as_text=True)[:2000]
    row, history = _record(world, "other")
    assert (row["title"], row["severity"], row["assignee_id"]) == (
        "other title, fixed", "major", world.users["user1"])
    mine = {field for field, user_id, _new in history if user_id == world.users["manager1"]}
    assert mine == {"title"}


def test_a_stale_record_form_changing_a_field_changed_meanwhile_is_a_409(world):
    url = f"/t/{world.slug}/records/{world.records['other']}/edit"
    manager1 = client_for(world, "manager1")
    stale = _open_form(manager1, url, is_record_form)
    admin = client_for(world, "admin")
    assert admin.post(url, data=_open_form(admin, url, is_record_form).data(
        severity="major")).status_code == 303
    before = _record(world, "other")
    conflict = manager1.post(url, data=stale.data(severity="minor", title="retitled"))
    assert conflict.status_code == 409
    page = conflict.get_data(as_text=True)
    assert "Severity: changed by someone else since you opened this form." in page
    assert _record(world, "other") == before  # nothing saved, not even the title
    # the page is the current version (major), with the other change kept (the title) and
    # what manager1 had chosen for severity shown apart; saving it as it is applies the title
    current = form_of(page, is_record_form)
    assert dict(current.fields)["severity"] == "major"
    assert dict(current.fields)["title"] == "retitled"
    assert re.search(r"<dt>Severity</dt>\s*<dd><pre>Minor</pre>", page)
    assert manager1.post(url, data=current.data()).status_code == 303
    row, _history = _record(world, "other")
    assert (row["title"], row["severity"]) == ("retitled", "major")


def test_a_record_form_without_its_version_saves_nothing(world):
    url = f"/t/{world.slug}/records/{world.records['other']}/edit"
    manager1 = client_for(world, "manager1")
    form = _open_form(manager1, url, is_record_form)
    before = _record(world, "other")
    for version in ("", "v1.forged", form.data()["version"][0][:-1] + "g"):
        response = manager1.post(url, data=form.data(title="no version", version=version))
        assert response.status_code == 400
        assert "reload the page" in response.get_data(as_text=True)
    assert _record(world, "other") == before


def test_a_stale_action_form_keeps_the_changes_made_meanwhile(world):
    url = f"/t/{world.slug}/actions/{world.actions['overdue_user1']}/edit"
    user1 = client_for(world, "user1")  # the owner
    stale = _open_form(user1, url, is_action_form)
    manager1 = client_for(world, "manager1")
    meanwhile = _open_form(manager1, url, is_action_form)
    assert manager1.post(url, data=meanwhile.data(
        due_date="2031-01-15", kind="immediate")).status_code == 303
    saved = user1.post(url, data=stale.data(title="gasket, replaced"))
    assert saved.status_code == 303, saved.get_data(as_text=True)[:2000]
    row = _action(world, "overdue_user1")
    assert (row["title"], row["kind"], row["due_date"].isoformat()) == (
        "gasket, replaced", "immediate", "2031-01-15")


def test_a_stale_action_form_changing_a_field_changed_meanwhile_is_a_409(world):
    url = f"/t/{world.slug}/actions/{world.actions['overdue_user1']}/edit"
    user1 = client_for(world, "user1")
    stale = _open_form(user1, url, is_action_form)
    manager1 = client_for(world, "manager1")
    assert manager1.post(url, data=_open_form(manager1, url, is_action_form).data(
        status="cancelled")).status_code == 303
    before = _action(world, "overdue_user1")
    conflict = user1.post(url, data=stale.data(status="done", title="done it"))
    assert conflict.status_code == 409
    page = conflict.get_data(as_text=True)
    assert "Status: changed by someone else since you opened this form." in page
    assert _action(world, "overdue_user1") == before
    current = form_of(page, is_action_form)
    assert (dict(current.fields)["status"], dict(current.fields)["title"]) == (
        "cancelled", "done it")
    # the same stale form posted again, with a change that conflicts with nothing, is saved
    assert user1.post(url, data=stale.data(description="noted")).status_code == 303
    row = _action(world, "overdue_user1")
    assert (row["description"], row["status"]) == ("noted", "cancelled")
