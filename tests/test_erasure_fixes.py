"""Erasure, on both backends: a tombstone stays as it is on the admin pages, free-text
mentions are replaced as whole words only, and the records' CSV export shows pseudonyms in
the reader's language."""

from __future__ import annotations

import pytest

from tests.conftest import csrf_token
from tests.my_data_world import build_rich_world, client_for


@pytest.fixture
def world(app, password_hash):
    return build_rich_world(app, password_hash)


def _erase(world, key: str, code: str = "7F3A") -> int:
    from qalitel.my_data.erasure import erase
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        erase(world.user(key), code)
        tdb.commit()
    return world.users[key]


def _state(world, key: str):
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        user = world.user(key)
        tdb.refresh(user)
        return user.name, user.email, user.profile, user.suspended_at is not None


def test_a_tombstone_cannot_be_edited_nor_reactivated(world):
    user_id = _erase(world, "user1")
    before = _state(world, "user1")
    admin = client_for(world, "admin")
    page_url = f"/t/{world.slug}/users/{user_id}"
    page = admin.get(page_url).get_data(as_text=True)
    assert "can no longer be changed or reactivated" in page
    assert f"/users/{user_id}/reactivate" not in page and 'name="name"' not in page
    token = csrf_token(admin, page_url)
    edited = admin.post(page_url, data={"csrf_token": token, "name": "Back again",
                                        "profile": "admin"})
    assert edited.status_code == 409
    assert "can no longer be changed" in edited.get_data(as_text=True)
    for action in ("reactivate", "suspend", "send-reset"):
        refused = admin.post(f"{page_url}/{action}", data={"csrf_token": token})
        assert refused.status_code == 409, action
    assert admin.post(f"{page_url}/reactivate").status_code == 400  # no CSRF token
    assert admin.post(page_url, data={"name": "Back again"}).status_code == 400
    assert _state(world, "user1") == before
    listing = admin.get(f"/t/{world.slug}/users/").get_data(as_text=True)
    assert "Deleted" in listing


def test_a_tombstone_joins_no_group(world):
    from qalitel.users import service
    from qalitel.users.models import Group
    from qalitel.users.service import UserError
    from tenants.context import tdb

    user_id = _erase(world, "user1")
    with world.app.app_context(), world.context():
        group = tdb.query(Group).filter_by(name="Night shift").one()
        service.set_group_members(group, [user_id, world.users["user2"]])
        assert service.member_ids(group) == [world.users["user2"]]
        with pytest.raises(UserError):
            service.set_user_groups(world.user("user1"), [group.id])
        with pytest.raises(UserError):
            service.rename(world.user("user1"), "Revived")


@pytest.mark.parametrize(("text", "expected"), [
    ("Aluminium by Al, al. and AL!", "Aluminium by Former user 7F3A, Former user 7F3A. and "
                                     "Former user 7F3A!"),
    ("Sal, Alan, Al-Rashid, (al)", "Sal, Alan, Al-Rashid, (Former user 7F3A)"),
    ("al@x.org, x.al and al+1", "al@x.org, x.al and Former user 7F3A+1"),
    ("photo of Al.jpg", "photo of Former user 7F3A.jpg"),
    ("mail AL@ACME.EXAMPLE or al@acme.example.org", "mail former-user-7f3a@erased.invalid or "
                                                    "al@acme.example.org"),
])
def test_mentions_are_replaced_as_whole_words(text, expected):
    from qalitel.my_data.mentions import replace_whole_words

    mapping = {"al@acme.example": "former-user-7f3a@erased.invalid", "Al": "Former user 7F3A"}
    assert replace_whole_words(text, mapping) == expected


def test_erasure_keeps_words_that_contain_the_name(world):
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        user = world.user("user2")
        user.name = "Alf"  # names of 3 characters or more are looked for (mentions.py)
        record = tdb.get(NonConformity, world.records["other"])
        record.title = "Alfalfa sheet, seen by ALF"
        record.description = "alf checked the Alfredo; ask alf@x or Alf."
        tdb.commit()
    _erase(world, "user2", "BEEF")
    with world.app.app_context(), world.context():
        record = tdb.get(NonConformity, world.records["other"])
        assert record.title == "Alfalfa sheet, seen by Former user BEEF"
        assert record.description == ("Former user BEEF checked the Alfredo; ask "
                                      "alf@x or Former user BEEF.")


def test_records_csv_shows_pseudonyms_in_the_readers_language(world):
    _erase(world, "user1")
    admin = client_for(world, "admin")
    english = admin.get(f"/t/{world.slug}/records/export.csv")
    assert english.status_code == 200
    assert "Former user 7F3A" in english.get_data(as_text=True)
    admin.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr"
    french = admin.get(f"/t/{world.slug}/records/export.csv").get_data(as_text=True)
    assert "Ancien utilisateur 7F3A" in french and "Former user" not in french
    assert "User acme" not in french
