"""Resolving the tenant of a request: unknown, suspended, provisioning and malformed slugs
each get their own page and status code, never another tenant's data."""

from __future__ import annotations

import pytest

from tests.conftest import TwoTenants, login

EN = {"Accept-Language": "en"}
UNKNOWN_TEXT = "No QALITEL space answers at this address"


def _body(response) -> str:
    return response.get_data(as_text=True)


def _no_tenant_data(response) -> None:
    body = _body(response)
    for slug in ("alpha", "bravo"):
        assert f"secret of {slug}" not in body
        assert f"{slug} record" not in body
        assert f"User {slug}" not in body and f"Admin {slug}" not in body


def test_healthz_json(app):
    client = app.test_client()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.is_json
    assert response.get_json() == {"status": "ok", "platform_database": "ok"}
    assert "Set-Cookie" not in response.headers or "qalitel_session" not in response.headers[
        "Set-Cookie"]


def test_unknown_slug_has_its_own_page(shared_two_tenants: TwoTenants):
    two_tenants = shared_two_tenants  # read-only: the module's world
    client = two_tenants.app.test_client()
    for path in ("/t/nosuch/login", "/t/nosuch/", "/t/nosuch/records/", "/t/nosuch/records/1",
                 "/t/nosuch", "/t/alphabet/login", "/t/alph/login", "/t/bravo2/records/"):
        response = client.get(path, headers=EN, follow_redirects=True)
        assert response.status_code == 404, path
        assert UNKNOWN_TEXT in _body(response), path
        _no_tenant_data(response)
    # An unknown path at a known tenant is a plain 404, not the "unknown space" page.
    response = client.get("/t/alpha/no-such-page", headers=EN)
    assert response.status_code == 404
    assert UNKNOWN_TEXT not in _body(response)


def test_unknown_slug_post_is_not_found(shared_two_tenants: TwoTenants):
    two_tenants = shared_two_tenants  # read-only: the module's world
    client = two_tenants.app.test_client()
    response = client.post("/t/nosuch/login", data={"email": "a@b.example", "password": "x"},
                           headers=EN)
    assert response.status_code == 404
    assert UNKNOWN_TEXT in _body(response)


RESERVED = ("www", "staff", "admin", "api", "static", "login", "healthz", "postgres",
            "template1", "public")
MALFORMED = ("ALPHA", "Alpha", "alpha-", "-alpha", "al--pha", "1alpha", "a", "alpha_x",
             "alpha.bravo", "alpha%2Fbravo", "alpha%00", "alph%C3%A9", "%D0%B0lpha",
             "alpha;bravo", "alpha%20", "x" * 41, "alpha'--", "alpha%27%3B%20DROP")


def test_reserved_and_malformed_slugs_are_not_found(shared_two_tenants: TwoTenants):
    two_tenants = shared_two_tenants  # read-only: the module's world
    client = two_tenants.app.test_client()
    login(client, "alpha", two_tenants.a.admin_email)  # a session must not change anything
    for slug in RESERVED + MALFORMED:
        for suffix in ("/login", "/", "/records/", f"/records/{two_tenants.b.record_ids[-1]}"):
            response = client.get(f"/t/{slug}{suffix}", headers=EN)
            assert response.status_code == 404, (slug, suffix, response.status_code)
            _no_tenant_data(response)


def test_path_tricks_do_not_cross_tenants(shared_two_tenants: TwoTenants):
    two_tenants = shared_two_tenants  # read-only: the module's world
    client = two_tenants.app.test_client()
    login(client, "alpha", two_tenants.a.user_email)
    only_in_bravo = two_tenants.b.record_ids[-1]
    for path in (f"/t/alpha/../bravo/records/{only_in_bravo}", "/t/alpha/t/bravo/records/",
                 f"/t/alpha//t/bravo/records/{only_in_bravo}", "/t//bravo/records/",
                 f"/t/alpha/records/{only_in_bravo}/../../../bravo/records/",
                 f"/t/alpha/records/-{only_in_bravo}", f"/t/alpha/records/{only_in_bravo}.0"):
        response = client.get(path, headers=EN, follow_redirects=True)
        assert response.status_code in (404, 405) or "/t/bravo/login" in response.request.path, (
            path, response.status_code)
        body = _body(response)
        assert "secret of bravo" not in body and "bravo record" not in body, path


def test_reserved_slugs_cannot_be_provisioned(app, password_hash):
    from tenants.provisioning import create_tenant
    from tenants.registry import InvalidSlugError

    with app.app_context():
        settings = app.extensions["qalitel_settings"]
        for slug in ("www", "staff", "admin", "api", "static"):
            with pytest.raises(InvalidSlugError):
                create_tenant(settings, slug, "X", "a@b.example", "x" * 12,
                              password_hash=password_hash)


def _status_via(app, how: str, slug: str, status: str) -> None:
    if how == "cli":
        runner = app.test_cli_runner()
        command = "suspend" if status == "suspended" else "resume"
        result = runner.invoke(args=["tenants", command, slug])
        assert result.exit_code == 0, result.output
        assert f"tenant {slug} is {status}" in result.output
    else:
        from tenants.registry import TenantStatus
        from tenants.service import set_status

        with app.app_context():
            assert set_status(slug, TenantStatus(status)).status.value == status


@pytest.mark.parametrize("how", ["cli", "service"])
def test_suspended_tenant_gets_its_own_page_then_resumes(two_tenants: TwoTenants, how: str):
    app = two_tenants.app
    client = app.test_client()
    assert login(client, "alpha", two_tenants.a.user_email).status_code == 302
    assert client.get("/t/alpha/records/").status_code == 200  # engine now cached
    _status_via(app, how, "alpha", "suspended")
    for path in ("/t/alpha/records/", "/t/alpha/", "/t/alpha/login",
                 f"/t/alpha/records/{two_tenants.a.record_ids[0]}"):
        response = client.get(path, headers=EN)
        assert response.status_code == 423, path
        body = _body(response)
        assert "Space suspended" in body and "Alpha" in body
        assert "secret of alpha" not in body and "alpha record" not in body
    # Posting credentials to a suspended tenant is refused the same way.
    response = client.post("/t/alpha/login", data={"email": two_tenants.a.user_email},
                           headers=EN)
    assert response.status_code == 423
    # The other tenant is not affected.
    bravo = app.test_client()
    assert login(bravo, "bravo", two_tenants.b.user_email).status_code == 302
    assert bravo.get("/t/bravo/records/").status_code == 200
    _status_via(app, how, "alpha", "active")
    response = client.get("/t/alpha/records/", headers=EN)
    assert response.status_code == 200
    assert "alpha record 0" in _body(response)


def test_closed_tenant_gets_gone_page(two_tenants: TwoTenants):
    from core.db import db
    from tenants.registry import TenantStatus
    from tenants.service import get_tenant

    app = two_tenants.app
    with app.app_context():
        get_tenant("alpha").status = TenantStatus.CLOSED
        db.session.commit()
    client = app.test_client()
    response = client.get("/t/alpha/login", headers=EN)
    assert response.status_code == 410
    assert "Space closed" in _body(response)
    # A closed tenant cannot be resumed by the suspend/resume commands.
    result = app.test_cli_runner().invoke(args=["tenants", "resume", "alpha"])
    assert result.exit_code != 0
    assert "closed" in result.output


def test_provisioning_row_is_not_found(two_tenants: TwoTenants):
    from core.db import db
    from tenants.registry import TenantStatus
    from tenants.service import get_tenant

    app = two_tenants.app
    client = app.test_client()
    assert login(client, "alpha", two_tenants.a.user_email).status_code == 302
    with app.app_context():
        get_tenant("alpha").status = TenantStatus.PROVISIONING
        db.session.commit()
    for path in ("/t/alpha/login", "/t/alpha/records/", "/t/alpha/"):
        response = client.get(path, headers=EN)
        assert response.status_code == 404, path
        assert UNKNOWN_TEXT in _body(response)
        _no_tenant_data(response)
    # Neither suspend nor resume touches a tenant still being provisioned.
    result = app.test_cli_runner().invoke(args=["tenants", "suspend", "alpha"])
    assert result.exit_code != 0 and "provisioning" in result.output


def test_platform_pages_have_no_tenant(shared_two_tenants: TwoTenants):
    two_tenants = shared_two_tenants  # read-only: the module's world
    client = two_tenants.app.test_client()
    home = client.get("/", headers=EN)
    assert home.status_code == 200
    _no_tenant_data(home)
    for path in ("/records/", "/login", "/logout", "/t/", "/t"):
        response = client.get(path, headers=EN)
        assert response.status_code == 404, path


def test_busy_engine_cache_answers_503_not_500(make_app, backend, password_hash):
    from tenants.engines import TenantInfo
    from tenants.service import get_tenant
    from tests.conftest import provision

    app = make_app(backend, engine_cache_size=1, tenant_pool_timeout=0.2)
    provision(app, "alpha", password_hash, records=0)
    provision(app, "bravo", password_hash, records=0)
    with app.app_context():
        alpha = TenantInfo.from_row(get_tenant("alpha"))
        cache = app.extensions["qalitel_engines"]
        with cache.lease(alpha):
            assert app.test_client().get("/t/bravo/login").status_code == 503
        assert app.test_client().get("/t/bravo/login").status_code == 200
