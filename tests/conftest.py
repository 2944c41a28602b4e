"""Fixtures against throwaway real databases: SQLite files and a real PostgreSQL server.

Every database test runs on both backends through the ``backend`` fixture. PostgreSQL
tests skip when no server answers, unless ``QALITEL_REQUIRE_POSTGRES=1`` (set by CI), which
turns that skip into a failure.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

PG_URL = os.environ.get("QALITEL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("QALITEL_REQUIRE_POSTGRES", "") in ("1", "true", "yes")
BACKENDS = ("sqlite", "postgresql")
PASSWORD = "correct horse battery staple"
# One session-wide prefix, so parallel runs and leftovers never collide.
RUN = secrets.token_hex(3)
PG_PREFIX = f"qtt{RUN}_"
PG_TEMPLATE = f"qtt{RUN}_template"


def _pg_available() -> bool:
    try:
        psycopg2.connect(PG_URL, connect_timeout=3).close()
        return True
    except psycopg2.OperationalError:
        return False


_PG_OK: bool | None = None


def require_postgres() -> None:
    """Skip (or, under QALITEL_REQUIRE_POSTGRES=1, fail) when PostgreSQL does not answer."""
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = _pg_available()
    if not _PG_OK:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL required (QALITEL_REQUIRE_POSTGRES=1) but {PG_URL} "
                        "does not answer")
        pytest.skip("PostgreSQL not available")


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One hash of PASSWORD, so tests do not pay scrypt for every account they create."""
    return generate_password_hash(PASSWORD)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    if request.param == "postgresql":
        require_postgres()
    return request.param


def settings_for(tmp_path, backend: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "instance_dir": tmp_path / "instance",
        "secret_key": "test-secret-" + secrets.token_hex(8),
        "engine_cache_size": 8,
        "tenant_pool_size": 2,
        "migrate_connection_budget": 4,
        "pg_name_prefix": PG_PREFIX,
        "template_database": PG_TEMPLATE,
        "tenant_server_url": PG_URL if backend == "postgresql" else "",
    }
    values.update(overrides)
    return values


@pytest.fixture
def make_app(tmp_path) -> Iterator[Any]:
    """Factory of apps on fresh platform databases; every tenant they made is destroyed after."""
    from qalitel import create_app
    from qalitel.extensions import db
    from tenants.service import init_platform

    apps: list[Flask] = []

    def make(backend: str = "sqlite", **overrides: Any) -> Flask:
        folder = tmp_path / f"app{len(apps)}"
        app = create_app(settings_for(folder, backend, **overrides))
        app.config["TESTING"] = True
        with app.app_context():
            init_platform()
        apps.append(app)
        return app

    yield make

    from tenants.provisioning import destroy_tenant
    from tenants.registry import Tenant

    for app in apps:
        with app.app_context():
            app.extensions["qalitel_engines"].clear()
            settings = app.extensions["qalitel_settings"]
            for tenant in db.session.query(Tenant).all():
                try:
                    destroy_tenant(settings, tenant)
                except Exception:
                    db.session.rollback()
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app, backend) -> Flask:
    return make_app(backend)


@pytest.fixture
def client(app) -> FlaskClient:
    return app.test_client()


@dataclass
class TenantHandle:
    slug: str
    uid: str
    admin_email: str
    user_email: str
    record_ids: list[int] = field(default_factory=list)
    user_ids: dict[str, int] = field(default_factory=dict)


def provision(app: Flask, slug: str, password_hash: str, *, records: int = 1,
              name: str | None = None) -> TenantHandle:
    """A tenant with an admin, a user and ``records`` non-conformities by the user."""
    from qalitel.records.service import create_nonconformity
    from qalitel.users.models import Profile, User
    from tenants.context import tenant_context
    from tenants.engines import TenantInfo
    from tenants.provisioning import create_tenant

    with app.app_context():
        settings = app.extensions["qalitel_settings"]
        result = create_tenant(settings, slug, name or slug.title(), f"admin@{slug}.example",
                               PASSWORD, admin_name=f"Admin {slug}", password_hash=password_hash)
        handle = TenantHandle(slug=slug, uid=result.tenant.uid,
                              admin_email=f"admin@{slug}.example",
                              user_email=f"user@{slug}.example")
        with tenant_context(TenantInfo.from_row(result.tenant)) as ctx:
            user = User(email=handle.user_email, name=f"User {slug}",
                        password_hash=password_hash, profile=Profile.USER)
            ctx.session.add(user)
            ctx.session.commit()
            admin = ctx.session.query(User).filter_by(email=handle.admin_email).one()
            handle.user_ids = {"admin": admin.id, "user": user.id}
            for i in range(records):
                record = create_nonconformity(user, f"{slug} record {i}", f"secret of {slug}")
                handle.record_ids.append(record.id)
    return handle


@dataclass
class TwoTenants:
    app: Flask
    a: TenantHandle
    b: TenantHandle


@pytest.fixture
def two_tenants(app, password_hash) -> TwoTenants:
    """Tenants ``alpha`` and ``bravo`` on the current backend; bravo has more records, so
    some of its ids exist only in bravo."""
    a = provision(app, "alpha", password_hash, records=1)
    b = provision(app, "bravo", password_hash, records=3)
    return TwoTenants(app=app, a=a, b=b)


CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(client: FlaskClient, url: str) -> str:
    page = client.get(url)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {url} ({page.status_code})"
    return match.group(1)


def login(client: FlaskClient, slug: str, email: str, password: str = PASSWORD,
          **extra: Any):
    token = csrf_token(client, f"/t/{slug}/login")
    return client.post(f"/t/{slug}/login",
                       data={"email": email, "password": password, "csrf_token": token, **extra})


def pytest_sessionfinish(session, exitstatus) -> None:
    """Drop whatever PostgreSQL objects this run's prefix left (crashed tests)."""
    if not _PG_OK:
        return
    from tenants import pg

    try:
        with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                        (f"qtt{RUN}_",))
            for (name,) in cur.fetchall():
                pg.drop_database(conn, name)
            cur.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
                        (f"qtt{RUN}_",))
            for (name,) in cur.fetchall():
                pg.drop_role(conn, name)
    except psycopg2.Error:
        pass
