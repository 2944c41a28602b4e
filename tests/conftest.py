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
        "external_url": "http://localhost",
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
    from core.db import db
    from qalitel import create_app
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
            ctx.session.commit()  # services flush; the caller commits (qalitel.transaction)
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


# ---------------------------------------------------------------- a real SMTP server (mail tests)


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: Any  # email.message.EmailMessage

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""


class MailBox:
    """What the loopback SMTP server received, in order."""

    def __init__(self, host: str, port: int) -> None:
        import threading

        self.host, self.port = host, port
        self.messages: list[ReceivedMail] = []
        self.logins: list[str] = []
        self._cond = threading.Condition()

    def add(self, item: ReceivedMail) -> None:
        with self._cond:
            self.messages.append(item)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Block until ``count`` messages arrived (mail leaves in a background thread)."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.messages) >= count, timeout)
            assert len(self.messages) >= count, (
                f"expected {count} message(s), got {len(self.messages)}")
            return list(self.messages)

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Overrides for ``make_app`` pointing the app at this server."""
        return {"smtp_host": self.host, "smtp_port": self.port, **extra}


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_smtp(auth: tuple[str, str] | None = None) -> tuple[Any, MailBox]:
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    box = MailBox("127.0.0.1", _free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            message = message_from_bytes(envelope.original_content or envelope.content,
                                         policy=policy.default)
            box.add(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
            return "250 OK"

    kwargs: dict[str, Any] = {}
    if auth is not None:
        def authenticator(server, session, envelope, mechanism, data):
            login = data.login.decode() if isinstance(data.login, bytes) else data.login
            password = (data.password.decode() if isinstance(data.password, bytes)
                        else data.password)
            ok = (login, password) == auth
            if ok:
                box.logins.append(login)
            return AuthResult(success=ok)

        kwargs = {"authenticator": authenticator, "auth_require_tls": False}
    controller = Controller(Handler(), hostname=box.host, port=box.port, **kwargs)
    controller.start()
    return controller, box


@pytest.fixture
def smtp_server() -> Iterator[MailBox]:
    """A real SMTP server (aiosmtpd) on a free loopback port; ``.messages`` it received."""
    controller, box = _start_smtp()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def smtp_server_with_auth() -> Iterator[MailBox]:
    """Same, offering ``AUTH`` without TLS (loopback only); ``mailer`` / ``mail-secret``
    succeed and are recorded in ``.logins``."""
    controller, box = _start_smtp(auth=("mailer", "mail-secret"))
    try:
        yield box
    finally:
        controller.stop()


LINK_RE = re.compile(r"https?://\S+")


def link_in(mail: ReceivedMail) -> str:
    """The one URL in a received message's text."""
    links = LINK_RE.findall(mail.body)
    assert len(links) == 1, f"expected one link in {mail.body!r}"
    return links[0]


def in_tenant(app: Flask, slug: str):
    """Context manager: the tenant session of ``slug`` outside a request (app context too)."""
    from contextlib import contextmanager

    from core.db import db
    from tenants.context import tenant_context
    from tenants.resolution import load_tenant

    @contextmanager
    def scope():
        with app.app_context():
            info = load_tenant(slug)
            db.session.remove()
            with tenant_context(info) as ctx:
                yield ctx.session

    return scope()


# ---------------------------------------------------------------- maintenance access (staff)

STAFF_PASSWORD = "staff passphrase 12+"


@dataclass
class StaffHandle:
    id: int
    email: str
    name: str
    secret: str


def make_staff(app: Flask, email: str = "eve@scoqi.example",
               name: str = "Eve Engineer") -> StaffHandle:
    """A staff account (password STAFF_PASSWORD); ``secret`` is its TOTP secret."""
    from urllib.parse import parse_qs, urlsplit

    from maintenance.staff import create_staff

    with app.app_context():
        staff, uri = create_staff(email, name, STAFF_PASSWORD)
        secret = parse_qs(urlsplit(uri).query)["secret"][0]
        return StaffHandle(id=staff.id, email=staff.email, name=staff.name, secret=secret)


def totp_code(app: Flask, secret: str, steps: int = 0) -> str:
    """The TOTP code at the app's clock (``steps`` 30-second steps later)."""
    import pyotp

    from core import clock

    with app.app_context():
        moment = clock.now()
    return pyotp.TOTP(secret).at(moment, counter_offset=steps)


def staff_login(client: FlaskClient, app: Flask, handle: StaffHandle, code: str | None = None,
                password: str = STAFF_PASSWORD):
    token = csrf_token(client, "/staff/login")
    return client.post("/staff/login", data={
        "email": handle.email, "password": password, "csrf_token": token,
        "code": totp_code(app, handle.secret) if code is None else code})


def grant_for_test(app: Flask, public_id: str, *, hours: float | None = None,
                   approver: tuple[str, str] = ("Ada Admin", "ada@client.example")) -> int:
    """TEST HELPER: approve a request directly in the database, as ``maintenance.grants``
    will, with a PostgreSQL login role of the grant's own (LOGIN, VALID UNTIL the end,
    CONNECTION LIMIT, CONNECT on the tenant database, USAGE on schema public, SELECT on every
    table; read-write adds INSERT/UPDATE/DELETE and sequence USAGE). Returns the grant id."""
    from datetime import timedelta

    from psycopg2 import sql

    from core import clock
    from core.crypto import encrypt
    from core.db import db
    from maintenance.models import Grant, MaintenanceRequest, RequestStatus, Scope
    from tenants import pg
    from tenants.provisioning import server_url
    from tenants.registry import Backend

    with app.app_context():
        settings = app.extensions["qalitel_settings"]
        request = db.session.query(MaintenanceRequest).filter_by(public_id=public_id).one()
        now = clock.now()
        ends = now + timedelta(hours=hours if hours is not None else request.hours)
        grant = Grant(request_id=request.id, tenant_id=request.tenant_id,
                      engineer_id=request.engineer_id, scope=request.scope, starts_at=now,
                      ends_at=ends)
        tenant = request.tenant
        if tenant.backend is Backend.POSTGRESQL:
            role = f"{settings.pg_name_prefix}mg{secrets.token_hex(4)}"
            password = secrets.token_urlsafe(24)
            url = server_url(settings, tenant.server)
            with pg.admin_connection(url) as conn, conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s NOINHERIT VALID UNTIL %s "
                                    "CONNECTION LIMIT 4").format(sql.Identifier(role)),
                            (password, ends.isoformat()))
                cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(tenant.database_name), sql.Identifier(role)))
            with pg.admin_connection(url, tenant.database_name) as conn, conn.cursor() as cur:
                ident = sql.Identifier(role)
                cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident))
                cur.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}")
                            .format(ident))
                if request.scope is Scope.READ_WRITE:
                    cur.execute(sql.SQL("GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "
                                        "public TO {}").format(ident))
                    cur.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {}")
                                .format(ident))
            grant.role_name = role
            grant.role_password_encrypted = encrypt(settings.encryption_key, password)
        request.status = RequestStatus.APPROVED
        request.decided_at = now
        request.decided_by_name, request.decided_by_email = approver
        db.session.add(grant)
        db.session.commit()
        return grant.id


@dataclass
class MaintWorld:
    """Tenants alpha and bravo, a controllable clock, two engineers, and a marker string
    written into alpha's records and user names (it must never leak without a grant)."""

    app: Flask
    clock: Any
    tenants: TwoTenants
    eve: StaffHandle
    mallory: StaffHandle
    marker: str

    def request(self, slug: str = "alpha", staff: StaffHandle | None = None,
                scope: str = "read", hours: float | None = None) -> str:
        from core.db import db
        from maintenance.models import StaffUser
        from maintenance.requests import create_request

        with self.app.app_context():
            engineer = db.session.get(StaffUser, (staff or self.eve).id)
            made = create_request(slug, engineer, "Investigate ticket #42", scope=scope,
                                  hours=hours)
            return made.public_id


@pytest.fixture
def maint_world(two_tenants) -> MaintWorld:
    from datetime import UTC, datetime

    from core.clock import ManualClock, set_clock
    from qalitel.records.models import NonConformity
    from qalitel.users.models import User

    app = two_tenants.app
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    set_clock(app, clock)
    marker = "MARKER" + secrets.token_hex(6)
    with in_tenant(app, "alpha") as session:
        for record in session.query(NonConformity).all():
            record.title = f"{marker} title"
            record.description = f"{marker} description <script>alert(1)</script>"
        session.query(User).filter_by(email=two_tenants.a.user_email).one().name = \
            f"{marker} user"
        session.commit()
    return MaintWorld(app=app, clock=clock, tenants=two_tenants, eve=make_staff(app),
                      mallory=make_staff(app, "mallory@scoqi.example", "Mallory Engineer"),
                      marker=marker)


# ---------------------------------------------------------------- platform database on PostgreSQL


@pytest.fixture
def platform_database(backend) -> Iterator[str | None]:
    """None on SQLite; on PostgreSQL the URL of a scratch platform database, dropped after.
    Set up before ``make_app`` (see ``platform_app``), so it is dropped after the app's
    engines are disposed."""
    if backend != "postgresql":
        yield None
        return
    from tenants import pg

    name = f"{PG_PREFIX}platform_{secrets.token_hex(4)}"
    with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
        cur.execute(pg.sql.SQL("CREATE DATABASE {}").format(pg.sql.Identifier(name)))
    try:
        yield pg.libpq_dsn(PG_URL, name)
    finally:
        with pg.admin_connection(PG_URL) as conn:
            pg.drop_database(conn, name)


@pytest.fixture
def platform_app(platform_database, make_app, backend) -> Flask:
    """An app whose platform database is on the current backend (its tenants too)."""
    overrides = {"database_url": platform_database} if platform_database else {}
    return make_app(backend, **overrides)


def pytest_sessionstart(session) -> None:
    """Compile stale translation catalogues (``make`` does it too; this covers a bare pytest)."""
    from qalitel.i18n import compile_catalogs

    compile_catalogs()


@pytest.fixture
def english_clients(monkeypatch) -> None:
    """Test clients send ``Accept-Language: en``, so assertions can read English messages
    whatever the French catalogue holds (French is the default locale)."""
    original = FlaskClient.__init__

    def init(self, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.environ_base.setdefault("HTTP_ACCEPT_LANGUAGE", "en")

    monkeypatch.setattr(FlaskClient, "__init__", init)


# ---------------------------------------------------------------- maintenance access (client side)


@dataclass
class ClientWorld:
    """``maint_world`` with mail going to a loopback SMTP server, a second admin, a suspended
    admin and a manager on alpha; clients send ``Accept-Language: en``."""

    world: MaintWorld
    mail: MailBox
    alpha_admins: set[str]

    @property
    def app(self) -> Flask:
        return self.world.app

    def request(self, slug: str = "alpha", scope: str = "read", hours: float | None = None,
                staff: StaffHandle | None = None) -> str:
        """A request made as in the console (absolute links in the e-mail)."""
        with self.app.test_request_context("/staff/", base_url="http://localhost/"):
            return self.world.request(slug, staff=staff, scope=scope, hours=hours)

    def signed_in(self, email: str, slug: str = "alpha") -> FlaskClient:
        client = self.app.test_client()
        response = login(client, slug, email)
        assert response.status_code == 302, response.get_data(as_text=True)[:300]
        return client

    def staff(self, handle: StaffHandle | None = None) -> FlaskClient:
        client = self.app.test_client()
        assert staff_login(client, self.app, handle or self.world.eve).status_code == 302
        return client

    def log(self, slug: str = "alpha") -> list[Any]:
        from core.db import db
        from maintenance.models import AccessLogEntry
        from tenants.registry import Tenant

        with self.app.app_context():
            tenant = db.session.query(Tenant).filter_by(slug=slug).one()
            entries = (db.session.query(AccessLogEntry).filter_by(tenant_id=tenant.id)
                       .order_by(AccessLogEntry.seq).all())
            for entry in entries:
                db.session.expunge(entry)
            return entries


@pytest.fixture
def client_world(maint_world, smtp_server, english_clients, password_hash) -> ClientWorld:
    import dataclasses

    from qalitel.users.models import Profile, User

    app = maint_world.app
    app.extensions["qalitel_settings"] = dataclasses.replace(
        app.extensions["qalitel_settings"], smtp_host=smtp_server.host,
        smtp_port=smtp_server.port)
    with in_tenant(app, "alpha") as session:
        session.add_all([
            User(email="second@alpha.example", name="Second Admin", password_hash=password_hash,
                 profile=Profile.ADMIN),
            User(email="gone@alpha.example", name="Gone Admin", password_hash=password_hash,
                 profile=Profile.ADMIN, suspended_at=maint_world.clock()),
            User(email="manager@alpha.example", name="Manager Alpha",
                 password_hash=password_hash, profile=Profile.MANAGER),
        ])
        session.commit()
    return ClientWorld(world=maint_world, mail=smtp_server,
                       alpha_admins={"admin@alpha.example", "second@alpha.example"})
