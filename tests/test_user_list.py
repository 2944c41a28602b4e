"""The user list pages through the shared core.pagination.Page, like the record lists."""

from __future__ import annotations

import re

import pytest

from tests.conftest import login, provision

pytestmark = pytest.mark.usefixtures("english_clients")


def test_user_list_is_paged(app, password_hash):
    from qalitel.users.models import User
    from qalitel.users.service import USERS_PER_PAGE
    from tests.conftest import in_tenant

    provision(app, "alpha", password_hash, records=0)
    with in_tenant(app, "alpha") as session:
        session.add_all(User(email=f"u{i:03d}@alpha.example", name=f"Member {i:03d}",
                             password_hash=password_hash) for i in range(USERS_PER_PAGE + 3))
        session.commit()
    total = USERS_PER_PAGE + 5  # with the admin and the user of provision()
    client = app.test_client()
    assert login(client, "alpha", "admin@alpha.example").status_code == 302

    def names(page: str) -> list[str]:
        return re.findall(r'/t/alpha/users/\d+">([^<]+)</a>', page)

    first = client.get("/t/alpha/users/").get_data(as_text=True)
    second = client.get("/t/alpha/users/?page=2").get_data(as_text=True)
    assert len(names(first)) == USERS_PER_PAGE
    assert len(names(second)) == total - USERS_PER_PAGE
    assert not set(names(first)) & set(names(second))
    assert f"1–{USERS_PER_PAGE} of {total}" in first and 'page=2">Next' in first
    beyond = client.get("/t/alpha/users/?page=99").get_data(as_text=True)
    assert names(beyond) == names(second)  # past the end: the last page
    for bad in ("0", "-1", "x", "99999999999"):
        assert client.get(f"/t/alpha/users/?page={bad}").status_code == 200
