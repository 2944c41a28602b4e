"""Purging a departed tenant's access log: an explicit operation that leaves a record.

Registered with :func:`tenants.hooks.on_before_destroy`, so ``destroy_tenant`` runs it after
marking the tenant closed. Under the tenant's log lock, in one transaction: an
``access_log_purges`` row (tenant uid and slug, the head's entry count and last hash, whether
the chain verified, when; HMAC-sealed, :mod:`maintenance.seals`) is inserted, then the entries
and the head are deleted — the triggers of revision p0005 let a DELETE through only where such
a record covers it. The record stays (append-only), the witness gets a ``purged`` line, and
``qalitel audit verify`` reports the log as purged rather than emptied.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from core import clock
from core.db import db
from maintenance import audit, witness
from maintenance.models import AccessLogEntry, AccessLogHead, AccessLogPurge, Grant
from maintenance.seals import purge_seal, seal_ok
from maintenance.verify_log import GENESIS
from tenants import hooks
from tenants.registry import Backend, Tenant, TenantStatus

log = logging.getLogger(__name__)

_log = AccessLogEntry.__table__
_heads = AccessLogHead.__table__
_purges = AccessLogPurge.__table__


def purge_log(_settings: Any, tenant: Tenant) -> None:
    """Record the purge of a closed tenant's log, then delete the log (idempotent)."""
    if tenant.status is not TenantStatus.CLOSED:
        raise audit.AuditWriteError(f"tenant {tenant.slug} is {tenant.status.value}: only a "
                                    "closed tenant's access log is purged")
    chain_ok = audit.verify(tenant.id).ok
    uid, slug, tenant_id = tenant.uid, tenant.slug, tenant.id

    def work(conn: Connection) -> tuple[int, str] | None:
        if conn.execute(select(_purges.c.id).where(_purges.c.tenant_uid == uid)).first():
            return None
        head = conn.execute(select(_heads).where(_heads.c.tenant_id == tenant_id)).one_or_none()
        count, last = (head.entry_count, head.last_hash) if head else (0, GENESIS)
        sealed = head is not None and seal_ok(uid, count, last, head.seal)
        at = audit.format_at(clock.now())
        ok = chain_ok and (sealed or head is None)
        conn.execute(insert(_purges).values(
            tenant_uid=uid, tenant_slug=slug, entry_count=count, last_hash=last, chain_ok=ok,
            purged_at=at, seal=purge_seal(uid, slug, count, last, ok, at)))
        conn.execute(delete(_log).where(_log.c.tenant_id == tenant_id))
        conn.execute(delete(_heads).where(_heads.c.tenant_id == tenant_id))
        conn.commit()
        return count, last

    done = audit.run_locked(tenant_id, work)
    if done is None:
        return
    try:
        witness.purge(uid, *done)
    except witness.WitnessError:
        log.exception("purge of %s's access log not written to the witness", slug)


def drop_grant_roles(settings: Any, tenant: Tenant, *,
                     by: str = "maintenance: tenant closed") -> list[str]:
    """Drop the PostgreSQL login roles of the tenant's grants, ended or not: server-wide
    objects that would outlive the tenant's database otherwise. Each role still there is
    named, as it goes, in the tenant's deletion record when it has one (flushed, not
    committed); returns those roles."""
    if tenant.backend is not Backend.POSTGRESQL or tenant.server is None:
        return []
    from maintenance import pg_roles
    from tenants.deletion import DeletionItem, DeletionRecord, ItemKind

    roles = db.session.execute(select(Grant.role_name).where(
        Grant.tenant_id == tenant.id, Grant.role_name.is_not(None))).scalars().all()
    record = db.session.execute(select(DeletionRecord).where(
        DeletionRecord.tenant_uid == tenant.uid)).scalar_one_or_none()
    dropped = [role for role in roles if pg_roles.drop_role(tenant, role)]
    if record is not None and dropped:
        from tenants.lifecycle import server_place

        place = server_place(settings, tenant)
        record.items += [DeletionItem(kind=ItemKind.GRANT_ROLE, name=role, place=place,
                                      removed_at=clock.now(), removed_by=by)
                         for role in dropped]
        db.session.flush()
    return dropped


def register() -> None:
    hooks.on_before_destroy(purge_log)
    hooks.on_before_destroy(drop_grant_roles)
