"""Findings of the hostile review on records: a folder name answered "exists already" to
people not cleared for the folder of that name (an oracle for confidential names), and a
stale edit form reverted other people's changes."""

from __future__ import annotations

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
