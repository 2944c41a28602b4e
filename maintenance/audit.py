"""The maintenance access log: per tenant, append-only, hash-chained, written first.

Every event of a maintenance intervention (request, approval, denial, expiries, revocation,
session start, each page or record viewed or changed, session end), and each export of the
whole tenant by SCOQI (``export``: ``qalitel tenants export``, the closure's export), is
appended with
:func:`append`, which commits in a transaction of its own *before* returning. A caller does
its work only after ``append`` returned; on :class:`AuditWriteError` it refuses the access.

**Chain.** A tenant's entries are numbered ``seq`` = 1, 2, 3… Each stores ``prev_hash`` (the
previous entry's ``hash``; 64 zeros for the first) and ``hash`` = SHA-256 of its canonical
form: the JSON object of ``tenant_uid, seq, at, event, actor_kind, actor_name, actor_email,
request_public_id, detail, prev_hash`` with sorted keys, no whitespace, UTF-8, non-ASCII kept
as is (``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``). ``at`` is
the UTC time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; ``tenant_uid`` (not the slug, which could be
renamed) ties an entry to its tenant. The reference implementation and the full description
are in ``maintenance/verify_log.py``, the standalone verifier clients run on an export; the
application verifies with the same code.

**Head.** ``access_log_heads`` keeps, per tenant, the entry count and last hash, sealed with
an HMAC-SHA256 under a key derived from the platform encryption key (:mod:`maintenance.seals`;
``QALITEL_ENCRYPTION_KEY``, never stored in the database). Removing the newest entries leaves
a chain that is valid on its own; the sealed head is what catches it. ``append`` refuses to
extend a log whose tail does not match its sealed head, or a purged log (the access is refused
until an operator looks).

**Serialisation.** Appends of one tenant are serialised: on PostgreSQL by a transaction-level
advisory lock keyed by the tenant, on SQLite by ``BEGIN IMMEDIATE`` (one writer per database)
behind a process lock; ``unique(tenant_id, seq)`` is the backstop. The wait is bounded by
the app config key ``AUDIT_LOCK_TIMEOUT_MS`` (default 5000). On SQLite the caller must not
hold uncommitted platform writes in ``db.session`` (append would wait for itself): write the
log first, as the rule says, or commit before.

**Witness.** Once committed, each entry's seq and hash also go to an append-only file outside
the database (:mod:`maintenance.witness`): a rollback to an older genuine head, or a rewrite
re-sealed with the key, contradicts it.

**Append-only in the database.** Triggers (platform revisions p0003, p0005) refuse ``UPDATE``
and ``DELETE`` on ``access_log`` (and ``TRUNCATE`` on PostgreSQL), and any change to a head but
moving it forward by one; a DELETE passes only for what a purge record covers
(:mod:`maintenance.purge`), and purge records themselves are append-only.
:func:`missing_guards` reports triggers dropped or disabled. Verification
(:mod:`maintenance.audit_verify`) also requires an entry for every request, decision, expiry
and revocation the platform tables hold.

**Limits, honestly.** The log is tamper-*evident*, not tamper-proof. Someone with write access
to the platform database, the encryption key *and* the witness files can rewrite a tenant's
whole log consistently; only a copy the client kept (the download, the last hash shown on the
access-log page: ``verify_log.py --previous old.jsonl --expect-last HASH``) shows it then.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

from flask import current_app, has_app_context
from sqlalchemy import Connection, Engine, func, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import make_transient_to_detached

from core import clock
from core.db import db
from maintenance import witness
from maintenance.audit_read import (  # noqa: F401  (re-exported: the log's reading side)
    Head,
    VerifyResult,
    entries_page,
    export_jsonl,
    head,
    iter_jsonl,
)
from maintenance.models import AccessLogEntry, AccessLogHead, AccessLogPurge
from maintenance.seals import SealKeyError, seal, seal_ok
from maintenance.verify_log import FIELDS, GENESIS, entry_hash
from tenants.registry import Tenant

EVENTS = ("request", "approval", "denial", "request_expired", "grant_expired", "revocation",
          "session_start", "view", "change", "change_failed", "session_end", "export")
ACTOR_KINDS = ("staff", "client", "system")
DEFAULT_LOCK_TIMEOUT_MS = 5000

# The triggers of revisions p0003 and p0005 (name -> table) on each backend.
GUARDS = {
    "sqlite": {"access_log_no_update": "access_log", "access_log_no_delete": "access_log",
               "access_log_heads_no_delete": "access_log_heads",
               "access_log_heads_forward_only": "access_log_heads",
               "access_log_purges_no_update": "access_log_purges",
               "access_log_purges_no_delete": "access_log_purges"},
    "postgresql": {"access_log_no_update": "access_log", "access_log_no_delete": "access_log",
                   "access_log_no_truncate": "access_log",
                   "access_log_heads_no_delete": "access_log_heads",
                   "access_log_heads_forward_only": "access_log_heads",
                   "access_log_heads_no_truncate": "access_log_heads",
                   "access_log_purges_no_update": "access_log_purges",
                   "access_log_purges_no_delete": "access_log_purges",
                   "access_log_purges_no_truncate": "access_log_purges"},
}

T = TypeVar("T")
_log = AccessLogEntry.__table__
_heads = AccessLogHead.__table__
_purges = AccessLogPurge.__table__
_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


class AuditWriteError(RuntimeError):
    """The access log could not be written: the caller must refuse the access."""


# ---------------------------------------------------------------- canonical pieces


def format_at(moment: datetime) -> str:
    """ISO 8601 UTC with microseconds and ``Z``: the ``at`` of an entry."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_at(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    raise TypeError(f"{type(value).__name__} cannot go in an access-log detail")


def normalise_detail(detail: dict[str, Any] | None) -> dict[str, Any]:
    """``detail`` as it reads back from JSON (string keys, lists, ISO times), or ValueError."""
    if detail is None:
        return {}
    if not isinstance(detail, dict):
        raise ValueError("detail must be a dict")
    try:
        return json.loads(json.dumps(detail, default=_json_default, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"detail is not JSON-serialisable: {exc}") from exc


# ---------------------------------------------------------------- append


def _lock_timeout_ms() -> int:
    if has_app_context():
        return int(current_app.config.get("AUDIT_LOCK_TIMEOUT_MS",
                                           DEFAULT_LOCK_TIMEOUT_MS))
    return DEFAULT_LOCK_TIMEOUT_MS


def _process_lock(engine: Engine) -> threading.Lock:
    key = str(engine.url)
    with _process_locks_guard:
        return _process_locks.setdefault(key, threading.Lock())


def _refuse_if_session_writes(engine: Engine) -> None:
    """On SQLite, an uncommitted write in ``db.session`` holds the lock ``append`` needs."""
    session = db.session()
    if engine.dialect.name != "sqlite" or not session.in_transaction():
        return
    dbapi = session.connection().connection.dbapi_connection
    if getattr(dbapi, "in_transaction", False):
        raise AuditWriteError("db.session holds uncommitted platform writes: append to the "
                              "access log first (or commit), then write")


def _validate(event: str, actor_kind: str, actor_name: str, actor_email: str | None,
              request_public_id: str | None) -> None:
    if event not in EVENTS:
        raise ValueError(f"unknown access-log event {event!r}")
    if actor_kind not in ACTOR_KINDS:
        raise ValueError(f"unknown actor kind {actor_kind!r}")
    if not isinstance(actor_name, str) or not actor_name.strip() or len(actor_name) > 200:
        raise ValueError("actor_name must be a human name of 1 to 200 characters")
    if actor_email is not None and (not isinstance(actor_email, str) or len(actor_email) > 254):
        raise ValueError("actor_email must be a string of at most 254 characters")
    if request_public_id is not None and (not isinstance(request_public_id, str)
                                          or len(request_public_id) > 36):
        raise ValueError("request_public_id must be a string of at most 36 characters")


def append(tenant_id: int, event: str, *, actor_kind: str, actor_name: str,
           actor_email: str | None = None, request_public_id: str | None = None,
           detail: dict[str, Any] | None = None) -> AccessLogEntry:
    """Append one event to the tenant's log and commit it; returns the entry (detached).

    Raises AuditWriteError when the entry could not be committed (database unreachable,
    read-only, locked past the timeout, table missing, head not matching the log…) and
    ValueError on arguments no entry may carry.
    """
    _validate(event, actor_kind, actor_name, actor_email, request_public_id)
    values = {"event": event, "actor_kind": actor_kind, "actor_name": actor_name,
              "actor_email": actor_email, "request_public_id": request_public_id,
              "detail": normalise_detail(detail), "at": format_at(clock.now())}
    return run_locked(tenant_id, lambda conn: _append_locked(conn, tenant_id, values))


def run_locked(tenant_id: int, work: Callable[[Connection], T]) -> T:
    """``work(conn)`` on a connection of its own holding the tenant's log lock (the advisory
    lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite); ``work`` commits. Database errors
    become AuditWriteError."""
    try:
        engine = db.engine
        _refuse_if_session_writes(engine)
        if engine.dialect.name == "sqlite":
            return _run_sqlite(engine, work)
        with engine.connect() as conn:
            conn.execute(select(func.set_config("lock_timeout", f"{_lock_timeout_ms()}ms",
                                                True)))
            conn.execute(select(func.pg_advisory_xact_lock(_pg_lock_key(tenant_id))))
            return work(conn)
    except AuditWriteError:
        raise
    except (SQLAlchemyError, OSError, SealKeyError) as exc:
        raise AuditWriteError(f"access log of tenant {tenant_id} not written: {exc}") from exc


def _pg_lock_key(tenant_id: int) -> int:
    digest = hashlib.sha256(f"qalitel:access-log:{tenant_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _run_sqlite(engine: Engine, work: Callable[[Connection], T]) -> T:
    timeout_ms = _lock_timeout_ms()
    lock = _process_lock(engine)
    if not lock.acquire(timeout=timeout_ms / 1000):
        raise AuditWriteError(f"access log busy for more than {timeout_ms} ms")
    try:
        with engine.connect() as conn:
            previous = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
            conn.exec_driver_sql(f"PRAGMA busy_timeout={int(timeout_ms)}")
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return work(conn)
            finally:
                if conn.connection.dbapi_connection.in_transaction:
                    conn.rollback()
                conn.exec_driver_sql(f"PRAGMA busy_timeout={int(previous or 5000)}")
    finally:
        lock.release()


def _append_locked(conn: Connection, tenant_id: int, values: dict[str, Any]) -> AccessLogEntry:
    tenant_uid = conn.execute(select(Tenant.uid).where(Tenant.id == tenant_id)).scalar()
    if tenant_uid is None:
        raise AuditWriteError(f"no tenant with id {tenant_id}")
    if conn.execute(select(_purges.c.id).where(_purges.c.tenant_uid == tenant_uid)).first():
        raise AuditWriteError("this tenant's access log was purged: nothing more is logged")
    current = conn.execute(select(_heads.c.entry_count, _heads.c.last_hash, _heads.c.seal)
                        .where(_heads.c.tenant_id == tenant_id)).one_or_none()
    tail = conn.execute(select(_log.c.seq, _log.c.hash).where(_log.c.tenant_id == tenant_id)
                        .order_by(_log.c.seq.desc()).limit(1)).one_or_none()
    count, prev_hash = (current.entry_count, current.last_hash) if current else (0, GENESIS)
    if current is not None and not seal_ok(tenant_uid, count, prev_hash, current.seal):
        raise AuditWriteError("the access-log head's seal is wrong: run `qalitel audit verify`")
    tail_position = (tail.seq, tail.hash) if tail is not None else (0, GENESIS)
    if tail_position != (count, prev_hash):
        raise AuditWriteError("the access log does not end at its sealed head: "
                              "run `qalitel audit verify`")
    fields = {"tenant_uid": tenant_uid, "seq": count + 1, "prev_hash": prev_hash, **values}
    digest = entry_hash(fields)
    row = {key: fields[key] for key in FIELDS if key != "tenant_uid"}
    result = conn.execute(insert(_log).values(tenant_id=tenant_id, hash=digest, **row))
    sealed = {"entry_count": count + 1, "last_hash": digest, "updated_at": values["at"],
              "seal": seal(tenant_uid, count + 1, digest)}
    if current is None:
        conn.execute(insert(_heads).values(tenant_id=tenant_id, **sealed))
    else:
        moved = conn.execute(update(_heads).where(_heads.c.tenant_id == tenant_id,
                                                  _heads.c.entry_count == count).values(**sealed))
        if moved.rowcount != 1:
            raise AuditWriteError("the access-log head moved under the lock")
    conn.commit()
    try:
        witness.entry(tenant_uid, count + 1, digest)
    except witness.WitnessError as exc:
        raise AuditWriteError(f"entry {count + 1} committed, but {exc}") from exc
    entry = AccessLogEntry(id=result.inserted_primary_key[0], tenant_id=tenant_id,
                           hash=digest, **row)
    make_transient_to_detached(entry)
    return entry


# ---------------------------------------------------------------- verify, read

def verify(tenant_id: int) -> VerifyResult:
    """Chain, sealed head, witness and requests of the tenant (``maintenance.audit_verify``)."""
    from maintenance.audit_verify import verify_tenant

    return verify_tenant(tenant_id)


def verify_all() -> Iterator[tuple[Tenant, VerifyResult]]:
    """Every tenant's verdict, by slug."""
    for tenant in db.session.execute(select(Tenant).order_by(Tenant.slug)).scalars().all():
        yield tenant, verify(tenant.id)


def missing_guards() -> list[str]:
    """Append-only triggers of revision p0003 that are absent or disabled."""
    engine = db.engine
    expected = GUARDS.get(engine.dialect.name, {})
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            present = set(conn.execute(text(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D' "
                "AND tgrelid IN ('access_log'::regclass, 'access_log_heads'::regclass, "
                "'access_log_purges'::regclass)"))
                .scalars())
        else:
            present = set(conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars())
    return sorted(set(expected) - present)
