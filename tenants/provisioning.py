"""Provisioning: a database per tenant, cloned from a pre-migrated template, all or nothing.

Order of work, each step named for fault injection (``fault=`` callback, used by tests):

``registry``   a registry row in state ``provisioning`` (the unique slug serialises racers)
``template``   the template is at the head revision (migrated under an exclusive lock)
``role``       PostgreSQL: a role of the tenant's own; ``LOGIN`` and its random password
               (kept encrypted) are given once the clone exists, overlapping the next connect
``database``   the clone (``CREATE DATABASE … TEMPLATE … OWNER``, then every database
               privilege revoked from PUBLIC) / SQLite: the file copy
``privileges`` PostgreSQL: objects handed to the tenant role, the template owner's dropped
``identity``   the identity row naming the tenant
``admin``      the first rows (the app's first client admin, ``tenants.hooks``), written
               through the tenant's own credentials
``activate``   the registry row becomes ``active``

A failure at any step undoes every earlier one (database, role, file, registry row). The
steps of each backend are in ``tenants.provision_pg`` and ``tenants.provision_sqlite``, the
templates in ``tenants.templates``, destruction and the sweep in ``tenants.lifecycle``.
Registry rows are not read back after the first commit (``bench/bench_provision.py``).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError

from core.config import Settings
from core.db import db
from core.validation import InvalidInput, check_email, check_name, check_password, in_english
from tenants import hooks, migrations
from tenants.lifecycle import GRANT_ROLE_INFIX, destroy_tenant, sweep
from tenants.provision_pg import admin_connect, background, close_when_done, create_postgres
from tenants.provision_sqlite import create_sqlite
from tenants.registry import (
    Backend,
    ProvisioningError,
    Tenant,
    TenantStatus,
    validate_slug,
)
from tenants.servers import ensure_server, server_for_new_tenant, server_url
from tenants.templates import ensure_sqlite_template, migrate_pg_template, sqlite_template_path

__all__ = [  # the names callers import from here
    "GRANT_ROLE_INFIX", "STEPS", "ProvisionResult", "ProvisioningError",
    "create_tenant", "destroy_tenant", "ensure_server", "ensure_sqlite_template",
    "generate_password", "migrate_pg_template", "server_url", "sqlite_template_path", "sweep",
]

log = logging.getLogger(__name__)

STEPS = ("registry", "template", "role", "database", "privileges", "identity", "admin",
         "activate")


@dataclass
class ProvisionResult:
    tenant: Tenant
    admin_email: str
    admin_password: str | None
    generated_password: bool
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return sum(self.timings.values())

    @property
    def without_hash_ms(self) -> float:
        return self.total_ms - self.timings.get("hash", 0.0)


def _checked(rule: Callable[[object], str], raw: object, what: str) -> str:
    """``rule(raw)``, its refusal turned into an operator's ProvisioningError naming ``what``."""
    try:
        return rule(raw)
    except InvalidInput as exc:
        raise ProvisioningError(f"invalid {what} {str(raw)[:80]!r}: {in_english(exc)}") from exc


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def create_tenant(settings: Settings, slug: str, name: str, admin_email: str,
                  admin_password: str | None = None, *, admin_name: str | None = None,
                  backend: str | None = None, server_name: str | None = None,
                  password_hash: str | None = None,
                  first_rows: hooks.FirstRows | None = None,
                  fault: Callable[[str], None] | None = None) -> ProvisionResult:
    """Create a tenant with its own database and first admin; all or nothing.

    ``first_rows`` (default: the provider the app registered in ``tenants.hooks``) turns the
    first admin into the rows to write; it hashes the password (timed as ``hash``) unless
    ``password_hash`` is given.
    """
    slug = validate_slug(slug)
    name = _checked(check_name, name, "company name")
    admin_email = _checked(check_email, admin_email, "admin email address")
    admin_name = _checked(check_name, admin_name or admin_email.split("@")[0], "admin name")
    generated = admin_password is None
    if admin_password is None:
        admin_password = generate_password()
    try:
        check_password(admin_password)
    except InvalidInput as exc:
        raise ProvisioningError(in_english(exc)) from exc
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def step(label: str) -> None:
        nonlocal clock
        if fault is not None:
            fault(label)
        now = time.perf_counter()
        timings[label] = timings.get(label, 0.0) + (now - clock) * 1000
        clock = now

    admin = hooks.FirstAdmin(admin_email, admin_name, admin_password, password_hash)
    rows = (first_rows or hooks.first_rows)(admin)
    timings["hash"] = (time.perf_counter() - clock) * 1000
    clock = time.perf_counter()

    server = server_for_new_tenant(settings, backend, server_name)
    # PostgreSQL: the admin connection opens while the registry row is written.
    admin_conn = background(admin_connect, server_url(settings, server)) if server else None
    tenant = Tenant(slug=slug, name=name, status=TenantStatus.PROVISIONING,
                    backend=Backend.POSTGRESQL if server else Backend.SQLITE,
                    server_id=server.id if server else None,
                    database_name=(f"{settings.pg_name_prefix}{slug}" if server
                                   else f"{slug}.sqlite3"))
    db.session.add(tenant)
    try:
        _commit_keeping_state()
    except IntegrityError:
        db.session.rollback()
        close_when_done(admin_conn)
        raise ProvisioningError(f"tenant {slug!r} already exists") from None
    undo: list[Callable[[], None]] = []
    try:
        step("registry")
        if server is not None and admin_conn is not None:
            create_postgres(settings, tenant, server, admin_conn, rows, step, undo)
        else:
            create_sqlite(settings, tenant, rows, step, undo)
        step("admin")
        tenant.status = TenantStatus.ACTIVE
        tenant.schema_revision = migrations.head("tenant")
        db.session.commit()
        step("activate")
    except BaseException as exc:
        db.session.rollback()
        close_when_done(admin_conn)
        _compensate(tenant, undo)
        if isinstance(exc, ProvisioningError):
            raise
        if isinstance(exc, Exception):
            raise ProvisioningError(f"provisioning {slug!r} failed: {exc}") from exc
        raise
    return ProvisionResult(tenant=tenant, admin_email=admin_email,
                           admin_password=admin_password, generated_password=generated,
                           timings=timings)


def _commit_keeping_state() -> None:
    """Commit without expiring loaded rows: the registry row holds exactly what was just
    written, so reading it back (one SELECT for the tenant, one for its server) is waste."""
    session = db.session()
    expire = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def _compensate(tenant: Tenant, undo: list[Callable[[], None]]) -> None:
    for action in reversed(undo):
        try:
            action()
        except Exception:  # keep undoing; the sweep catches what is left
            log.exception("compensation step failed for tenant %s", tenant.slug)
    try:
        db.session.execute(Tenant.__table__.delete().where(Tenant.id == tenant.id))
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("could not delete registry row of tenant %s", tenant.slug)
    with contextlib.suppress(Exception):
        db.session.expunge(tenant)
