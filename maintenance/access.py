"""The only door by which SCOQI staff reach a tenant's database.

``open_session(grant, staff)`` checks, at that instant, that the grant is active, inside its
window and this engineer's; appends ``session_start`` to the tenant's access log; only then
connects — never through the app's engine cache:

* PostgreSQL: as the grant's own login role (created by ``maintenance.grants`` with exactly
  the privileges of its scope), so the database itself refuses what the scope does not allow;
* SQLite: the tenant file behind :mod:`maintenance.sqlite_door` (read-only for the read
  scope, an authorizer enforcing the allow-list either way).

Only what :mod:`maintenance.allow_list` names is listed, selected or offered for editing.
Each read or write re-checks the grant, then appends ``view``/``change`` (table, record ids;
for a change, the field's old and new values, masked where sensitive) and has it committed
BEFORE the data is shown or written: when the log cannot be written, nothing is read.
``close()`` appends ``session_end``.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    create_engine,
    event,
    func,
    inspect,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.pool import NullPool

from core import clock, config
from core.config import Settings
from core.crypto import decrypt
from core.db import db
from core.validation import is_id
from maintenance import audit, changes, grant_log, revocations, sqlite_door
from maintenance.allow_list import RULES, masked, readable, writable
from maintenance.door_values import Record, TablePage, convert, display
from maintenance.models import Grant, GrantStatus, RequestStatus, Scope, StaffUser
from maintenance.requests import aware
from tenants.engines import TenantIdentityError, check_identity, sqlite_path
from tenants.registry import Backend, Tenant, TenantStatus

log = logging.getLogger(__name__)

IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
PAGE_SIZE_MAX = 200


class AccessDenied(PermissionError):
    """The grant does not allow this, now (revoked, expired, not this engineer's, scope)."""


class NotFound(LookupError):
    """No such table, record or column in the tenant database."""


def grant_state(grant: Grant) -> str:
    """What the grant allows right now: active, not-started, expired or revoked."""
    if grant.status is GrantStatus.REVOKED or revocations.pending(grant.id):
        return "revoked"
    if grant.status is GrantStatus.EXPIRED:
        return "expired"
    now = clock.now()
    if now < aware(grant.starts_at):
        return "not-started"
    if now >= aware(grant.ends_at):
        return "expired"
    return "active"


def grant_of(staff: StaffUser, grant_id: object) -> Grant | None:
    """This engineer's grant by id, freshly read; None for anyone else's or a forged id."""
    if not is_id(grant_id):
        return None
    grant = db.session.execute(
        select(Grant).where(Grant.id == grant_id, Grant.engineer_id == staff.id)
        .execution_options(populate_existing=True)).scalar_one_or_none()
    return grant


def check_grant(grant: Grant, staff: StaffUser) -> None:
    """Raise AccessDenied unless ``staff`` may use ``grant`` at this instant (read afresh)."""
    if revocations.pending(grant.id):
        raise AccessDenied("the grant is revoked")
    try:
        db.session.refresh(grant)
        db.session.refresh(staff)
    except InvalidRequestError:
        raise AccessDenied("this grant no longer exists") from None
    if grant.engineer_id != staff.id:
        raise AccessDenied("this grant belongs to another engineer")
    if not staff.active:
        raise AccessDenied("this staff account is deactivated")
    state = grant_state(grant)
    if state == "expired" and grant.status is GrantStatus.ACTIVE:
        from maintenance.grants import expire_grant_lazily  # logged, role cut off

        expire_grant_lazily(grant)
    if state != "active":
        raise AccessDenied(f"the grant is {state}")
    db.session.refresh(grant.request)
    if grant.request.status is not RequestStatus.APPROVED:
        raise AccessDenied("the request behind this grant is not approved")
    tenant = grant.tenant
    db.session.refresh(tenant)
    if tenant.status is not TenantStatus.ACTIVE:
        raise AccessDenied(f"the tenant is {tenant.status.value}")
    contradiction = grant_log.grant_mismatch(grant, staff.email)
    if contradiction is not None:
        log.warning("grant %s refused: %s", grant.id, contradiction)
        raise AccessDenied(f"this grant is not the one the client approved: {contradiction}")


class MaintenanceSession:
    """One logged session on one grant. Use ``open_session``; close it (or use ``with``)."""

    def __init__(self, grant: Grant, staff: StaffUser) -> None:
        self.grant = grant
        self.staff = staff
        self.session_id = secrets.token_hex(6)
        self.views = 0
        self.changes = 0
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._closed = False
        self._started = False

    # -------------------------------------------------------------- life cycle

    def _open(self) -> None:
        check_grant(self.grant, self.staff)
        tenant: Tenant = self.grant.tenant
        self.tenant_id = tenant.id
        self.scope = self.grant.scope
        self.request_public_id = self.grant.request.public_id
        self._log("session_start", {"scope": self.scope.value, "backend": tenant.backend.value,
                                    "ends_at": aware(self.grant.ends_at).isoformat()})
        self._started = True
        try:
            self._engine = self._make_engine(tenant)
            self._conn = self._engine.connect()
        except TenantIdentityError:
            self.close(error="not this tenant's database")
            raise AccessDenied("the database does not belong to this tenant") from None
        except BaseException:
            self.close(error="could not connect")
            raise

    def _settings(self) -> Settings:
        return config.settings()

    def _make_engine(self, tenant: Tenant) -> Engine:
        settings = self._settings()
        if tenant.backend is Backend.SQLITE:
            path = sqlite_path(settings, tenant.database_name).resolve()
            if not path.is_file():
                raise NotFound("the tenant database file is missing")
            return sqlite_door.engine(path, write=self.scope is Scope.READ_WRITE,
                                      uid=tenant.uid, slug=tenant.slug)
        if not (self.grant.role_name and self.grant.role_password_encrypted
                and tenant.server is not None):
            raise AccessDenied("this grant has no database role")
        server = make_url(decrypt(settings.encryption_key, tenant.server.url_encrypted))
        url = server.set(drivername="postgresql+psycopg2", username=self.grant.role_name,
                         password=decrypt(settings.encryption_key,
                                          self.grant.role_password_encrypted),
                         database=tenant.database_name, query={})
        engine = create_engine(url, poolclass=NullPool, connect_args={
            "connect_timeout": 5,
            "application_name": f"qalitel-maintenance:{self.request_public_id[:8]}",
            "options": "-c statement_timeout=30000"})
        uid, slug = tenant.uid, tenant.slug
        event.listen(engine, "connect",
                     lambda dbapi_connection, _record: check_identity(dbapi_connection, uid, slug))
        return engine

    def close(self, error: str | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._conn is not None:
                self._conn.close()
            if self._engine is not None:
                self._engine.dispose()
        finally:
            self._conn = self._engine = None
            if self._started:
                detail: dict[str, Any] = {"views": self.views, "changes": self.changes}
                if error:
                    detail["error"] = error
                try:
                    self._log("session_end", detail)
                except Exception:
                    log.exception("could not log the end of maintenance session %s",
                                  self.session_id)

    def __enter__(self) -> MaintenanceSession:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(error=exc_type.__name__ if exc_type is not None else None)

    # -------------------------------------------------------------- helpers

    def _log(self, event: str, detail: dict[str, Any]) -> None:
        """Append and commit one log entry; raises (audit.AuditWriteError) when it cannot."""
        audit.append(self.tenant_id, event, actor_kind="staff", actor_name=self.staff.name,
                     actor_email=self.staff.email, request_public_id=self.request_public_id,
                     detail={"session": self.session_id, **detail})

    def _connection(self) -> Connection:
        if self._conn is None or self._closed:
            raise AccessDenied("this maintenance session is closed")
        return self._conn

    def _before(self, event: str, detail: dict[str, Any]) -> Connection:
        """Re-check the grant, then log; only afterwards may the caller touch the data."""
        conn = self._connection()
        check_grant(self.grant, self.staff)
        self._log(event, detail)
        if event == "change":
            self.changes += 1
        else:
            self.views += 1
        return conn

    @staticmethod
    def _name(name: object) -> str:
        if not isinstance(name, str) or not IDENTIFIER_RE.fullmatch(name):
            raise NotFound("no such table or column")
        return name

    def _table(self, conn: Connection, name: str) -> Table:
        if name not in inspect(conn).get_table_names():
            raise NotFound(f"no table {name}")
        if name not in RULES:
            raise AccessDenied(f"the table {name} is not open to maintenance access")
        return Table(name, MetaData(), autoload_with=conn)

    @staticmethod
    def _readable(table: Table) -> list[Column]:
        return [c for c in table.columns if readable(table.name, c.name)]

    @staticmethod
    def _single_key(table: Table):
        keys = list(table.primary_key.columns)
        return keys[0] if len(keys) == 1 else None

    @staticmethod
    def _coerce_id(column, record_id: object) -> Any:
        text = str(record_id)
        if len(text) > 200:
            raise NotFound("no such record")
        try:
            kind = column.type.python_type
        except NotImplementedError:
            return text
        if kind is int:
            if not re.fullmatch(r"-?\d{1,18}", text):
                raise NotFound("no such record")
            return int(text)
        return text

    # -------------------------------------------------------------- the operations

    def tables(self) -> list[str]:
        """The tenant tables open to maintenance (logged as a view of the table list)."""
        conn = self._before("view", {"what": "tables"})
        try:
            return sorted(set(inspect(conn).get_table_names()) & set(RULES))
        finally:
            conn.rollback()

    def rows(self, table: str, page: int = 1, page_size: int = 50) -> TablePage:
        """One page of a table's rows in primary-key order (logged with table and page; a page
        past the end shows the last one)."""
        table = self._name(table)
        page = page if is_id(page) else 1
        page_size = max(1, min(int(page_size), PAGE_SIZE_MAX))
        conn = self._before("view", {"what": "rows", "table": table, "page": page,
                                     "page_size": page_size, "order": "primary key"})
        try:
            reflected = self._table(conn, table)
            key = self._single_key(reflected)
            shown = self._readable(reflected)
            order = list(reflected.primary_key.columns) or shown[:1]
            total = int(conn.execute(select(func.count()).select_from(reflected)).scalar_one())
            page = min(page, max(1, -(-total // page_size)))
            result = conn.execute(select(*shown).order_by(*order)
                                  .limit(page_size).offset((page - 1) * page_size))
            columns = list(result.keys())
            rows, ids = [], []
            for row in result:
                mapping = row._mapping
                rows.append([display(c, mapping[c]) for c in columns])
                ids.append(str(mapping[key.name]) if key is not None else None)
            return TablePage(table=table, columns=columns, rows=rows, ids=ids,
                             primary_key=key.name if key is not None else None, page=page,
                             page_size=page_size, total=total)
        finally:
            conn.rollback()

    def record(self, table: str, record_id: object) -> Record:
        """One record by primary key (logged with table and record id)."""
        table = self._name(table)
        if len(str(record_id)) > 200:
            raise NotFound("no such record")
        conn = self._before("view", {"what": "record", "table": table,
                                     "record_id": str(record_id)})
        try:
            reflected = self._table(conn, table)
            key = self._single_key(reflected)
            if key is None:
                raise NotFound(f"table {table} has no single-column primary key")
            row = conn.execute(select(*self._readable(reflected)).where(
                key == self._coerce_id(key, record_id))).first()
            if row is None:
                raise NotFound("no such record")
            mapping = row._mapping
            editable = [] if self.scope is Scope.READ else [
                c.name for c in reflected.columns
                if not c.primary_key and writable(table, c.name)]
            return Record(table=table, record_id=str(record_id), primary_key=key.name,
                          values=[(c, display(c, mapping[c])) for c in mapping],
                          editable=editable)
        finally:
            conn.rollback()

    def update_field(self, table: str, record_id: object, column: str, value: str) -> None:
        """Change one field of one record (read-write grants, allow-listed fields only).

        The old value is read (not shown), then ``change`` is logged with the old and the new
        value, and only then is the record written, in the same tenant transaction."""
        table, column = self._name(table), self._name(column)
        if self.scope is not Scope.READ_WRITE:
            raise AccessDenied("this grant is read-only")
        if not writable(table, column):
            raise AccessDenied(f"{table}.{column} cannot be changed through maintenance "
                               "access (authentication, identity and access data are out "
                               "of reach)")
        if not isinstance(value, str) or len(value) > 20000:
            raise ValueError("the value must be text of at most 20000 characters")
        conn = self._connection()
        check_grant(self.grant, self.staff)
        try:
            reflected = self._table(conn, table)
            key = self._single_key(reflected)
            if key is None or column not in reflected.columns or column == key.name:
                raise NotFound("no such field")
            target = reflected.columns[column]
            new = convert(target, value)
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            where = key == self._coerce_id(key, record_id)
            found = conn.execute(select(target).where(where).with_for_update()).first()
            if found is None:
                raise NotFound("no such record")
            self._log("change", {"table": table, "record_id": str(record_id)[:200],
                                 "column": column, "old": masked(column, found[0]),
                                 "new": masked(column, new)})
            try:
                conn.execute(sql_update(reflected).where(where).values({column: new}))
                conn.commit()
                self.changes += 1
            except Exception as exc:
                conn.rollback()
                self._log("change_failed", {"table": table, "record_id": str(record_id)[:200],
                                            "column": column, "error": type(exc).__name__})
                raise
            changes.field_changed(self.grant.tenant, table, self._coerce_id(key, record_id),
                                  column)  # what the app derives from it
        finally:
            if conn.in_transaction() or getattr(conn.connection.dbapi_connection,
                                                "in_transaction", False):
                conn.rollback()


def open_session(grant: Grant, staff: StaffUser) -> MaintenanceSession:
    """Check the grant now, log ``session_start``, then connect. Use as a context manager."""
    session = MaintenanceSession(grant, staff)
    session._open()
    return session
