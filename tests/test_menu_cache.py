"""The main menu is rendered once per tenant, language and profile and kept
(``qalitel.menu``): each tenant's menu links to that tenant only, a user's menu is never an
admin's, a language switch changes it, and a client choosing its Host header neither adds
entries nor changes what is shown."""

from __future__ import annotations

import re

from tests.conftest import login

MENU_RE = re.compile(r'<details class="fold menu">.*?</details>', re.S)


def menu(client, url: str, **headers) -> str:
    page = client.get(url, headers=headers)
    assert page.status_code == 200, url
    found = MENU_RE.search(page.get_data(as_text=True))
    assert found, url
    return found.group(0)


def follow_to(client, domain: str) -> None:
    """The client's cookies, also sent to ``domain`` (as a browser on that host would)."""
    for cookie in list(client._cookies.values()):
        client.set_cookie(cookie.key, cookie.value, domain=domain, path=cookie.path)


def test_one_menu_per_tenant_language_and_profile(shared_two_tenants):
    world = shared_two_tenants
    app = world.app
    menus = app.extensions["qalitel_menus"]
    admin_a, admin_b, user_a = app.test_client(), app.test_client(), app.test_client()
    login(admin_a, "alpha", world.a.admin_email)
    login(admin_b, "bravo", world.b.admin_email)
    login(user_a, "alpha", world.a.user_email)
    before = len(menus)

    first = menu(admin_a, "/t/alpha/", **{"Accept-Language": "en"})
    for host in ("x1.example", "x2.example", "evil.example:8443"):
        follow_to(admin_a, host.split(":")[0])
        assert menu(admin_a, "/t/alpha/records/", Host=host, **{"Accept-Language": "en"}) == first
    assert len(menus) == before + 1  # the Host header is not part of the key

    other = menu(admin_b, "/t/bravo/", **{"Accept-Language": "en"})
    assert "/t/bravo/users/" in other and "/t/alpha/" not in other
    assert "/t/alpha/users/" in first and "/t/bravo/" not in first

    plain = menu(user_a, "/t/alpha/", **{"Accept-Language": "en"})
    assert "/users/" not in plain and "Non-conformities" in plain

    french = menu(admin_a, "/t/alpha/", **{"Accept-Language": "fr"})
    assert "Tableau de bord" in french and french != first
    assert len(menus) == before + 4


def test_the_menu_cache_is_bounded_least_recently_used_first(shared_two_tenants, monkeypatch):
    from qalitel import menu as menu_module

    world = shared_two_tenants
    app = world.app
    menus = app.extensions["qalitel_menus"]
    client = app.test_client()
    login(client, "alpha", world.a.admin_email)
    menus.clear()  # a cache only: dropping it changes nothing shown
    menu(client, "/t/alpha/", **{"Accept-Language": "en"})
    monkeypatch.setattr(menu_module, "MAX_MENUS", 1)
    menu(client, "/t/alpha/", **{"Accept-Language": "fr"})
    assert len(menus) == 1
    assert next(iter(menus))[1] == "fr"  # the newest kept, the older one dropped
