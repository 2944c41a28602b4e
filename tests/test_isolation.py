"""One tenant can never reach another's data: not by URL, host, cookie, id, header or engine.

Runs on both backends; the PostgreSQL-only part checks the database-level guarantees
(own owner role, no ``CONNECT`` for PUBLIC, a tenant role refused at another's database).
"""

from __future__ import annotations

import dataclasses
import re

import psycopg2
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError, OperationalError

from tests.conftest import PASSWORD, PG_URL, TwoTenants, csrf_token, login, provision

EN = {"Accept-Language": "en"}
SERVER = "example.test"


def _info(app, slug: str):
    from tenants.engines import TenantInfo
    from tenants.service import get_tenant

    with app.app_context():
        return TenantInfo.from_row(get_tenant(slug))


def _no_bravo_data(response) -> None:
    body = response.get_data(as_text=True)
    assert "secret of bravo" not in body
    assert "bravo record" not in body
    assert "User bravo" not in body and "Admin bravo" not in body


def _is_login_redirect(response, slug: str) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith(
        f"/t/{slug}/login")


# ---------------------------------------------------------------- by path and id


def test_record_ids_only_in_bravo_are_not_found_at_alpha(shared_two_tenants: TwoTenants):
    two_tenants = shared_two_tenants  # read-only: the module's world
    client = two_tenants.app.test_client()
    assert login(client, "alpha", two_tenants.a.user_email).status_code == 302
    only_in_bravo = [i for i in two_tenants.b.record_ids if i not in two_tenants.a.record_ids]
    assert only_in_bravo, "fixture must give bravo ids alpha does not have"
    for record_id in only_in_bravo:
        response = client.get(f"/t/alpha/records/{record_id}")
        assert response.status_code == 404
        _no_bravo_data(response)
    listing = client.get("/t/alpha/records/")
    assert listing.status_code == 200
    assert "alpha record 0" in listing.get_data(as_text=True)
    _no_bravo_data(listing)


def test_shared_id_shows_own_tenant_record(shared_two_tenants: TwoTenants):
    """Record id 1 exists in both databases: alpha's path always shows alpha's row."""
    two_tenants = shared_two_tenants  # read-only: the module's world
    shared = set(two_tenants.a.record_ids) & set(two_tenants.b.record_ids)
    assert shared
    client = two_tenants.app.test_client()
    login(client, "alpha", two_tenants.a.user_email)
    for record_id in shared:
        response = client.get(f"/t/alpha/records/{record_id}")
        assert response.status_code == 200
        assert "secret of alpha" in response.get_data(as_text=True)
        _no_bravo_data(response)


# ---------------------------------------------------------------- by session cookie


def test_alpha_session_is_anonymous_at_bravo(shared_two_tenants: TwoTenants):
    two_tenants = shared_two_tenants  # read-only: the module's world
    client = two_tenants.app.test_client()
    assert login(client, "alpha", two_tenants.a.admin_email).status_code == 302
    assert client.get("/t/alpha/").status_code == 200
    for path in ("/t/bravo/", "/t/bravo/records/", "/t/bravo/records/new",
                 *(f"/t/bravo/records/{i}" for i in two_tenants.b.record_ids)):
        response = client.get(path)
        assert _is_login_redirect(response, "bravo"), (path, response.status_code)
        _no_bravo_data(response)
    # The alpha session is still alpha's: it was not replaced or ended by the visit.
    assert client.get("/t/alpha/records/").status_code == 200


def test_alpha_session_at_bravo_login_page_stays_anonymous(shared_two_tenants: TwoTenants):
    two_tenants = shared_two_tenants  # read-only: the module's world
    client = two_tenants.app.test_client()
    login(client, "alpha", two_tenants.a.admin_email)
    page = client.get("/t/bravo/login", headers=EN)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert 'name="password"' in body
    assert "Sign out" not in body and "Admin alpha" not in body
    _no_bravo_data(page)


def test_alpha_remember_cookie_does_not_sign_in_at_bravo(two_tenants: TwoTenants):
    client = two_tenants.app.test_client()
    response = login(client, "alpha", two_tenants.a.user_email, remember="y")
    assert response.status_code == 302
    remember = client.get_cookie("qalitel_remember", path="/t/alpha/")
    assert remember is not None
    client.delete_cookie("qalitel_session")
    # The remember cookie alone signs in again at alpha ...
    assert client.get("/t/alpha/records/").status_code == 200
    client.delete_cookie("qalitel_session")
    # ... and never at bravo, even replayed there on purpose.
    for path in ("/", "/t/bravo/"):
        client.set_cookie("qalitel_remember", remember.value, path=path)
    response = client.get("/t/bravo/records/")
    assert _is_login_redirect(response, "bravo")
    _no_bravo_data(response)


def test_alpha_password_does_not_open_bravo(two_tenants: TwoTenants):
    """alpha's accounts do not exist at bravo, whatever the password."""
    client = two_tenants.app.test_client()
    response = login(client, "bravo", two_tenants.a.admin_email)
    assert response.status_code == 401
    assert _is_login_redirect(client.get("/t/bravo/records/"), "bravo")


# ---------------------------------------------------------------- nothing but the URL


def test_no_header_query_or_cookie_selects_a_tenant(two_tenants: TwoTenants):
    for how in ("header", "query", "cookie", "all"):
        _try_to_select_bravo(two_tenants, how)


def _try_to_select_bravo(two_tenants: TwoTenants, how: str) -> None:
    client = two_tenants.app.test_client()
    login(client, "alpha", two_tenants.a.user_email)
    headers = {"X-Tenant": "bravo", "X-Tenant-Slug": "bravo", "X-Forwarded-Host":
               f"bravo.{SERVER}"} if how in ("header", "all") else {}
    query = {"tenant": "bravo", "slug": "bravo"} if how in ("query", "all") else {}
    if how in ("cookie", "all"):
        client.set_cookie("tenant", "bravo")
        client.set_cookie("slug", "bravo")
    only_in_bravo = two_tenants.b.record_ids[-1]
    listing = client.get("/t/alpha/records/", headers=headers, query_string=query)
    assert listing.status_code == 200
    assert "alpha record 0" in listing.get_data(as_text=True)
    _no_bravo_data(listing)
    response = client.get(f"/t/alpha/records/{only_in_bravo}", headers=headers,
                          query_string=query)
    assert response.status_code == 404
    _no_bravo_data(response)
    for path in ("/records/", f"/records/{only_in_bravo}", "/login"):
        response = client.get(path, headers=headers, query_string=query)
        assert response.status_code == 404, path
        _no_bravo_data(response)
    home = client.get("/", headers=headers, query_string=query)
    _no_bravo_data(home)


# ---------------------------------------------------------------- subdomains


@pytest.fixture
def hosted(make_app, backend, password_hash) -> TwoTenants:
    app = make_app(backend, server_name=SERVER)
    a = provision(app, "alpha", password_hash, records=1)
    b = provision(app, "bravo", password_hash, records=3)
    return TwoTenants(app=app, a=a, b=b)


def _host_login(client, host: str, email: str):
    base = f"http://{host}"
    page = client.get("/login", base_url=base)
    assert page.status_code == 200, page.status_code
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      page.get_data(as_text=True)).group(1)
    return client.post("/login", base_url=base,
                       data={"email": email, "password": PASSWORD, "csrf_token": token})


def test_subdomain_serves_its_tenant(hosted: TwoTenants):
    client = hosted.app.test_client()
    base = f"http://alpha.{SERVER}"
    assert _is_login_redirect(client.get("/records/", base_url=base), "alpha")
    assert _host_login(client, f"alpha.{SERVER}", hosted.a.user_email).status_code == 302
    listing = client.get("/records/", base_url=base)
    assert listing.status_code == 200
    assert "alpha record 0" in listing.get_data(as_text=True)
    own = client.get(f"/records/{hosted.a.record_ids[0]}", base_url=base)
    assert own.status_code == 200 and "secret of alpha" in own.get_data(as_text=True)
    # The explicit path form works on the tenant's own host, and with a port.
    assert client.get("/t/alpha/records/", base_url=base).status_code == 200
    assert client.get("/records/", base_url=f"http://alpha.{SERVER}:8080").status_code in (
        200, 302)
    # Platform routes are not shadowed by the host.
    assert client.get("/healthz", base_url=base).status_code == 200


def test_forged_host_cannot_reach_another_tenant_path(hosted: TwoTenants):
    client = hosted.app.test_client()
    login(client, "alpha", hosted.a.user_email)  # a valid alpha session (path mode)
    session = client.get_cookie("qalitel_session")
    assert session is not None
    paths = ("/t/alpha/", "/t/alpha/records/", f"/t/alpha/records/{hosted.a.record_ids[0]}",
             "/t/alpha/login", "/t/alpha")
    # Control: on the bare server name, path mode serves alpha with that cookie.
    client.set_cookie("qalitel_session", session.value, domain=SERVER)
    control = client.get("/t/alpha/records/", base_url=f"http://{SERVER}")
    assert control.status_code == 200 and "alpha record 0" in control.get_data(as_text=True)
    for host in (f"bravo.{SERVER}", f"BRAVO.{SERVER.upper()}", f"bravo.{SERVER}:8443",
                 f"bravo.{SERVER}."):
        hostname = host.lower().split(":")[0]
        client.set_cookie("qalitel_session", session.value, domain=hostname)
        for path in paths:
            for response in (client.get(path, base_url=f"http://{host}"),
                             client.get(path, headers={"Host": host})):
                assert response.status_code == 404, (host, path, response.status_code)
                body = response.get_data(as_text=True)
                assert "secret of alpha" not in body and "alpha record" not in body
                _no_bravo_data(response)


def test_alpha_cookie_on_bravo_host_is_anonymous(hosted: TwoTenants):
    client = hosted.app.test_client()
    assert _host_login(client, f"alpha.{SERVER}", hosted.a.user_email).status_code == 302
    session_cookie = client.get_cookie("qalitel_session", domain=f"alpha.{SERVER}")
    assert session_cookie is not None
    # Replay alpha's session cookie at bravo's host, as an attacker would.
    client.set_cookie("qalitel_session", session_cookie.value, domain=f"bravo.{SERVER}")
    response = client.get("/records/", base_url=f"http://bravo.{SERVER}")
    assert _is_login_redirect(response, "bravo")
    _no_bravo_data(response)


def test_bad_or_unknown_subdomains_are_not_found(hosted: TwoTenants):
    client = hosted.app.test_client()
    for host in (f"evil.alpha.{SERVER}", f"www.{SERVER}", f"staff.{SERVER}", f"al_pha.{SERVER}",
                 f"nosuch.{SERVER}", f"-alpha.{SERVER}", f"alpha-.{SERVER}", f"a.{SERVER}"):
        for path in ("/records/", "/login", "/t/alpha/records/", "/t/alpha/login"):
            response = client.get(path, headers={"Host": host})
            assert response.status_code == 404, (host, path)
            assert "alpha record" not in response.get_data(as_text=True)
            _no_bravo_data(response)


# ---------------------------------------------------------------- engines and identity


def test_engine_pointed_at_another_database_refuses(two_tenants: TwoTenants, backend: str):
    from tenants.engines import TenantIdentityError, build_engine

    app = two_tenants.app
    alpha, bravo = _info(app, "alpha"), _info(app, "bravo")
    settings = app.extensions["qalitel_settings"]
    forged = dataclasses.replace(alpha, database_name=bravo.database_name)
    engine = build_engine(forged, settings, pooled=False)
    try:
        if backend == "sqlite":
            with pytest.raises(TenantIdentityError), engine.connect():
                pass
        else:  # alpha's role may not even connect to bravo's database
            with pytest.raises(OperationalError, match="permission denied|CONNECT privilege"), \
                    engine.connect():
                pass
    finally:
        engine.dispose()
    if backend == "postgresql":
        # With bravo's own credentials the connection opens, and the identity check refuses.
        forged = dataclasses.replace(alpha, database_name=bravo.database_name,
                                     role_name=bravo.role_name,
                                     role_password_encrypted=bravo.role_password_encrypted)
        engine = build_engine(forged, settings, pooled=False)
        try:
            with pytest.raises(TenantIdentityError), engine.connect():
                pass
        finally:
            engine.dispose()
    # A slug mismatch with the right uid is refused too.
    forged = dataclasses.replace(alpha, slug="bravo")
    engine = build_engine(forged, settings, pooled=False)
    try:
        with pytest.raises(TenantIdentityError), engine.connect():
            pass
    finally:
        engine.dispose()
    # The genuine engine works.
    engine = build_engine(alpha, settings, pooled=False)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT slug FROM tenant_identity")).scalar() == "alpha"
    finally:
        engine.dispose()


def test_tenant_context_reads_only_its_own_database(two_tenants: TwoTenants):
    from qalitel.records.models import NonConformity
    from tenants.context import tdb, tenant_context

    app = two_tenants.app
    with app.app_context():
        with tenant_context(_info(app, "alpha")):
            titles = tdb.execute(select(NonConformity.title)).scalars().all()
        assert titles == ["alpha record 0"]
        with tenant_context(_info(app, "bravo")):
            titles = tdb.execute(select(NonConformity.title)).scalars().all()
        assert sorted(titles) == [f"bravo record {i}" for i in range(3)]


def test_nested_tenant_context_is_refused(two_tenants: TwoTenants):
    from tenants.context import tenant_context

    app = two_tenants.app
    alpha, bravo = _info(app, "alpha"), _info(app, "bravo")
    with app.app_context(), tenant_context(alpha), pytest.raises(
            RuntimeError, match="already set"), tenant_context(bravo):
        pass


# ---------------------------------------------------------------- wrong session


def test_sessions_refuse_the_other_kind_of_model(two_tenants: TwoTenants):
    from core.db import WrongDatabaseError, db
    from qalitel.users.models import Profile, User
    from tenants.context import tdb, tenant_context
    from tenants.registry import Tenant

    app = two_tenants.app
    with app.app_context():
        with pytest.raises(WrongDatabaseError):
            db.session.execute(select(User))
        db.session.rollback()
        db.session.add(User(email="x@y.example", name="x", password_hash="x",
                            profile=Profile.USER))
        with pytest.raises(WrongDatabaseError):
            db.session.commit()
        db.session.rollback()
        with tenant_context(_info(app, "alpha")):
            with pytest.raises(WrongDatabaseError):
                tdb.execute(select(Tenant))
            tdb.rollback()
            with pytest.raises(WrongDatabaseError):
                tdb.get(Tenant, 1)
            tdb.rollback()
            assert tdb.execute(select(User.email).order_by(User.email)).scalars().all() == [
                "admin@alpha.example", "user@alpha.example"]


def test_tdb_without_tenant_raises(app):
    from qalitel.users.models import User
    from tenants.context import NoTenantError, current_tenant, tdb

    with app.app_context():
        with pytest.raises(NoTenantError):
            tdb.execute(select(User))
        with pytest.raises(NoTenantError):
            current_tenant()
    with app.test_request_context("/"), pytest.raises(NoTenantError):
        tdb.get(User, 1)


def test_tenant_session_outside_its_context_raises(two_tenants: TwoTenants):
    from qalitel.users.models import User
    from tenants.context import NoTenantError, tenant_context

    app = two_tenants.app
    with app.app_context():
        with tenant_context(_info(app, "alpha")) as ctx:
            session = ctx.session
        with pytest.raises(NoTenantError):
            session.execute(select(User))


# ---------------------------------------------------------------- SQLite hardening


def test_sqlite_tenant_connection_hardening(make_app, password_hash):
    from tenants.context import tdb, tenant_context
    from tenants.engines import sqlite_path

    app = make_app("sqlite")
    provision(app, "alpha", password_hash)
    provision(app, "bravo", password_hash)
    settings = app.extensions["qalitel_settings"]
    bravo_file = sqlite_path(settings, _info(app, "bravo").database_name)
    stray = settings.instance_dir / "attached.sqlite3"
    with app.app_context(), tenant_context(_info(app, "alpha")):
        assert tdb.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert tdb.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        for target in (bravo_file, stray, ":memory:"):
            with pytest.raises(DatabaseError, match="not authorized"):
                tdb.execute(text("ATTACH DATABASE :path AS other"), {"path": str(target)})
            tdb.rollback()
        with pytest.raises(DatabaseError, match="not authorized"):
            tdb.execute(text(f"ATTACH '{bravo_file}' AS other"))
        tdb.rollback()
        names = tdb.execute(text("PRAGMA database_list")).all()
        assert [row[1] for row in names] == ["main"]
    assert not stray.exists()


# ---------------------------------------------------------------- PostgreSQL


def _admin_query(sql: str, params: tuple = (), database: str | None = None) -> list[tuple]:
    from tenants import pg

    with pg.admin_connection(PG_URL, database) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _role_dsn(app, info, database: str) -> str:
    from core.crypto import decrypt
    from tenants import pg

    settings = app.extensions["qalitel_settings"]
    server = decrypt(settings.encryption_key, info.server_url_encrypted)
    password = decrypt(settings.encryption_key, info.role_password_encrypted)
    from sqlalchemy import make_url

    url = make_url(server).set(username=info.role_name, password=password)
    return pg.libpq_dsn(url, database)


@pytest.fixture(scope="module")
def pg_tenants(make_module_app, password_hash) -> TwoTenants:
    """Read-only: the tests below only inspect and try to connect."""
    from tests.conftest import require_postgres

    require_postgres()
    app = make_module_app("postgresql")
    a = provision(app, "alpha", password_hash, records=1)
    b = provision(app, "bravo", password_hash, records=3)
    return TwoTenants(app=app, a=a, b=b)


def test_pg_each_database_owned_by_its_own_role(pg_tenants: TwoTenants):
    app = pg_tenants.app
    alpha, bravo = _info(app, "alpha"), _info(app, "bravo")
    assert alpha.role_name and bravo.role_name and alpha.role_name != bravo.role_name
    for info in (alpha, bravo):
        ((owner,),) = _admin_query(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
            (info.database_name,))
        assert owner == info.role_name
        ((superuser, createdb, createrole, bypass, inherit),) = _admin_query(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolinherit "
            "FROM pg_roles WHERE rolname = %s", (info.role_name,))
        assert not (superuser or createdb or createrole or bypass or inherit)
        # No member roles: nobody inherits the tenant role's rights.
        assert _admin_query("SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                            "WHERE r.rolname = %s", (info.role_name,)) == []


def test_pg_connect_not_granted_to_public(pg_tenants: TwoTenants):
    app = pg_tenants.app
    for slug in ("alpha", "bravo"):
        info = _info(app, slug)
        ((acl,),) = _admin_query("SELECT datacl::text[] FROM pg_database WHERE datname = %s",
                                 (info.database_name,))
        assert acl is not None, "NULL datacl means the default: CONNECT for PUBLIC"
        assert not [entry for entry in acl if entry.startswith("=")], acl
        grants = _admin_query(
            "SELECT a.grantee, a.privilege_type FROM pg_database d, aclexplode(d.datacl) a "
            "WHERE d.datname = %s", (info.database_name,))
        assert all(grantee != 0 for grantee, _ in grants)  # 0 = PUBLIC
        holders = {row[0] for row in _admin_query(
            "SELECT r.rolname FROM pg_roles r WHERE has_database_privilege(r.oid, %s, 'CONNECT') "
            "AND NOT r.rolsuper AND r.rolname LIKE %s", (info.database_name,
                                                         info.role_name[:-len(slug)] + "%"))}
        assert holders == {info.role_name}


def test_pg_tables_owned_by_tenant_role(pg_tenants: TwoTenants):
    app = pg_tenants.app
    for slug in ("alpha", "bravo"):
        info = _info(app, slug)
        owners = _admin_query(
            "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S', 'v', 'm', 'p')",
            database=info.database_name)
        names = {name for name, _owner in owners}
        assert {"tenant_identity", "users", "nonconformities", "alembic_version"} <= names
        assert {owner for _name, owner in owners} == {info.role_name}, owners


def test_pg_role_cannot_connect_to_another_tenant_database(pg_tenants: TwoTenants):
    app = pg_tenants.app
    alpha, bravo = _info(app, "alpha"), _info(app, "bravo")
    settings = app.extensions["qalitel_settings"]
    # Control: alpha's role reaches alpha's database with its decrypted password.
    conn = psycopg2.connect(_role_dsn(app, alpha, alpha.database_name), connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, slug FROM tenant_identity")
            assert cur.fetchone() == (alpha.role_name, "alpha")
    finally:
        conn.close()
    for target in (bravo.database_name, settings.template_database):
        with pytest.raises(psycopg2.OperationalError,
                           match="permission denied|CONNECT privilege"):
            psycopg2.connect(_role_dsn(app, alpha, target), connect_timeout=5).close()
    with pytest.raises(psycopg2.OperationalError, match="permission denied|CONNECT privilege"):
        psycopg2.connect(_role_dsn(app, bravo, alpha.database_name), connect_timeout=5).close()


def test_pg_tenant_role_cannot_escalate(pg_tenants: TwoTenants):
    """Inside its own database, a tenant role cannot become another role nor read the
    platform's secrets."""
    app = pg_tenants.app
    alpha, bravo = _info(app, "alpha"), _info(app, "bravo")
    conn = psycopg2.connect(_role_dsn(app, alpha, alpha.database_name), connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in (f'SET ROLE "{bravo.role_name}"', 'SET ROLE "postgres"',
                              f'CREATE DATABASE "{alpha.database_name}_x"'):
                with pytest.raises(psycopg2.Error, match="permission denied"):
                    cur.execute(statement)
    finally:
        conn.close()


def test_forged_csrf_from_alpha_cannot_write_at_bravo(two_tenants: TwoTenants):
    """A signed-in alpha user posting to bravo's form gets bravo's login, and bravo is
    unchanged."""
    from qalitel.records.models import NonConformity
    from tenants.context import tdb, tenant_context

    app = two_tenants.app
    client = app.test_client()
    login(client, "alpha", two_tenants.a.user_email)
    token = csrf_token(client, "/t/alpha/records/new")
    response = client.post("/t/bravo/records/new",
                           data={"title": "planted", "description": "x", "csrf_token": token})
    assert _is_login_redirect(response, "bravo")
    with app.app_context(), tenant_context(_info(app, "bravo")):
        assert tdb.execute(select(NonConformity).where(
            NonConformity.title == "planted")).first() is None
