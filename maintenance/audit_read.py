"""Reading a tenant's access log: consistent snapshots, streamed entries, the JSON-lines
export, the sealed head as shown to client admins, pages for display."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from core.db import db
from maintenance.models import AccessLogEntry, AccessLogHead
from maintenance.verify_log import GENESIS
from tenants.registry import Tenant

_log = AccessLogEntry.__table__
_heads = AccessLogHead.__table__

_ROW_COLUMNS = (_log.c.seq, _log.c.at, _log.c.event, _log.c.actor_kind, _log.c.actor_name,
                _log.c.actor_email, _log.c.request_public_id, _log.c.detail, _log.c.prev_hash,
                _log.c.hash)


def _snapshot(conn: Connection) -> Connection:
    """One consistent view of head and entries for the rest of this connection's use."""
    if conn.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    else:
        conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql("SELECT count(*) FROM access_log_heads").scalar()
    return conn


def _entries(conn: Connection, tenant_id: int, tenant_uid: str) -> Iterator[dict[str, Any]]:
    """A tenant's entries in ``seq`` order, streamed, as canonical dicts (plus ``hash``)."""
    query = (select(*_ROW_COLUMNS).where(_log.c.tenant_id == tenant_id)
             .order_by(_log.c.seq, _log.c.id))
    result = conn.execution_options(stream_results=True, yield_per=2000).execute(query)
    keys = [*result.keys(), "tenant_uid"]
    for row in result:
        yield dict(zip(keys, (*row, tenant_uid), strict=True))


def _tenant(tenant_id: int) -> Tenant:
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        raise LookupError(f"no tenant with id {tenant_id}")
    return tenant


_EXPORT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# Characters some tools take for line breaks, escaped so that one entry stays one line.
_LINE_BREAKS = (("\x85", "\\u0085"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def _one_line(entry: dict[str, Any]) -> str:
    line = _EXPORT.encode(entry)
    for char, escaped in _LINE_BREAKS:
        if char in line:
            line = line.replace(char, escaped)
    return line + "\n"


def iter_jsonl(tenant_id: int) -> Iterator[str]:
    """The tenant's log as JSON lines (one entry per line, keys sorted), streamed."""
    tenant = _tenant(tenant_id)
    with db.engine.connect() as raw:
        conn = _snapshot(raw)
        for entry in _entries(conn, tenant_id, tenant.uid):
            yield _one_line(entry)
        conn.rollback()


def export_jsonl(tenant_id: int) -> str:
    return "".join(iter_jsonl(tenant_id))


@dataclass(frozen=True)
class Head:
    count: int
    last_hash: str
    updated_at: str | None


def head(tenant_id: int) -> Head:
    """What the sealed head records (shown to client admins so they can note it)."""
    row = db.session.execute(select(_heads).where(_heads.c.tenant_id == tenant_id)).one_or_none()
    if row is None:
        return Head(0, GENESIS, None)
    return Head(row.entry_count, row.last_hash, row.updated_at)


def entries_page(tenant_id: int, *, offset: int = 0, limit: int = 100) -> list[AccessLogEntry]:
    """Newest first, for display."""
    return list(db.session.execute(
        select(AccessLogEntry).where(AccessLogEntry.tenant_id == tenant_id)
        .order_by(AccessLogEntry.seq.desc()).offset(offset).limit(limit)).scalars())


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    first_bad_seq: int | None = None
    reason: str | None = None
    last_hash: str = GENESIS
    #: When the log was purged (``maintenance.purge``): the purge's time; None otherwise.
    purged_at: str | None = None

    def describe(self) -> str:
        if self.ok and self.purged_at:
            return (f"purged at {self.purged_at}: {self.count} entries, last hash "
                    f"{self.last_hash}")
        if self.ok:
            return f"ok, {self.count} entries, last hash {self.last_hash}"
        return f"BROKEN at entry {self.first_bad_seq}: {self.reason}"
