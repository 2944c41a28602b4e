"""What list pages build once instead of per link or per page: the list links from one
``url_for`` (``list_url``, ``sort_headers``) and the main menu kept per place, language and
profile (``qalitel.menu``). Both must give exactly what building them each time gives."""

from __future__ import annotations

import re

import pytest
from flask import url_for

from qalitel.records import specs
from qalitel.records.web import list_url, sort_headers
from tests.conftest import login

ARGS = [
    {},
    {"reset": 1},
    {"sort": "-title", "page": 2, "per_page": 50},
    {"q": "a b&c=d/é?#+%", "status": "open", "sort": "number", "page": 1},
    {"q": "l'été (2026) ; !$*,:@", "assignee": "me", "overdue": "1", "page": None},
    {"folder": "none", "per_page": 10, "page": 3, "sort": "-detected_on"},
]
MENU = re.compile(r'<details class="fold menu">.*?</details>', re.S)


@pytest.mark.parametrize("args", ARGS)
@pytest.mark.parametrize("endpoint", ["tenant.records.index", "tenant.records.actions"])
def test_list_url_is_url_for(make_app, args, endpoint):
    app = make_app("sqlite")
    with app.test_request_context("/t/alpha/records/"):
        base = url_for(endpoint, slug="alpha")
        assert list_url(base, args) == url_for(endpoint, slug="alpha", **args)


def test_sort_headers_link_as_url_for(make_app):
    app = make_app("sqlite")
    query = {"q": "x y", "status": "open", "sort": "-title", "per_page": "10", "page": "2"}
    spec = specs.parse_spec("records", query)
    with app.test_request_context("/t/alpha/records/"):
        base = url_for("tenant.records.index", slug="alpha")
        html = str(sort_headers(spec, base, {"number": "Number", "title": "T<i>"}))
        hrefs = re.findall(r'href="([^"]+)"', html)
        assert [h.replace("&amp;", "&") for h in hrefs] == [
            url_for("tenant.records.index", slug="alpha", **spec.sort_args(key))
            for key in ("number", "title")]
    assert 'aria-sort="descending"' in html and "T&lt;i&gt; ↓" in html
    assert html.count("aria-sort") == 1


def _menu(client, slug: str, language: str = "en") -> str:
    page = client.get(f"/t/{slug}/records/", headers={"Accept-Language": language})
    assert page.status_code == 200
    return MENU.search(page.get_data(as_text=True)).group(0)


def test_the_kept_menu_follows_profile_language_and_tenant(shared_two_tenants):
    world = shared_two_tenants
    a, b = world.a, world.b
    admin, user, other = (world.app.test_client() for _ in range(3))
    login(admin, a.slug, a.admin_email)
    login(user, a.slug, a.user_email)
    login(other, b.slug, b.admin_email)
    for _ in range(2):  # built, then kept: the same either way
        admin_menu, user_menu = _menu(admin, a.slug), _menu(user, a.slug)
        assert f'href="/t/{a.slug}/users/"' in admin_menu and ">Users<" in admin_menu
        assert "/users/" not in user_menu and "Maintenance" not in user_menu
        assert f'href="/t/{a.slug}/records/"' in user_menu
        french = _menu(admin, a.slug, "fr")
        assert "Utilisateurs" in french and ">Users<" not in french
        other_menu = _menu(other, b.slug)
        assert f"/t/{b.slug}/" in other_menu and f"/t/{a.slug}/" not in other_menu


def test_list_choices_are_the_users_and_folders_queries_in_one(platform_app, backend,
                                                              password_hash):
    """The record list's one statement for its filter choices gives what the two queries
    give, for an admin (every folder) and a plain user (no confidential folder)."""
    from datetime import UTC, datetime

    from qalitel.records.models import Folder
    from qalitel.records.service import assignable_users, list_choices, usable_folders
    from qalitel.users.models import User
    from tests.conftest import in_tenant, provision

    tenant = provision(platform_app, "choices", password_hash, records=0)
    with in_tenant(platform_app, tenant.slug) as session:
        session.add_all([Folder(name="zeta", confidential=False),
                         Folder(name="Alpha", confidential=True),
                         Folder(name="beta", confidential=False),
                         User(email="gone@choices.example", name="Gone", profile="user",
                              password_hash=password_hash, suspended_at=datetime.now(UTC)),
                         User(email="b@choices.example", name="bob", profile="user",
                              password_hash=password_hash)])
        session.commit()
        for user in session.query(User).filter(User.suspended_at.is_(None)):
            users, folders = list_choices(user)
            assert [(u.id, u.name) for u in users] == [tuple(u) for u in assignable_users()]
            expected = [(f.id, f.name, f.confidential) for f in usable_folders(user)]
            assert [(f.id, f.name, f.confidential) for f in folders] == expected
            assert len(expected) == (3 if user.profile.value == "admin" else 2)
        assert "Gone" not in {u.name for u in users}
