"""A closed tenant's maintenance access ends: pending requests expire, active grants are
revoked, each with its access-log entry (actor: the system), and every grant role is dropped.

Called by the app's closure (``qalitel.closure``) once the tenant is marked closed. Like the
other decisions, each claim is one conditional ``UPDATE`` committed before its log entry is
appended (on SQLite an uncommitted platform write holds the lock the append needs); a
failed append puts the row back, so the closure can be run again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from core import clock
from core.db import db
from maintenance import audit, grants, purge, revocations
from maintenance.models import Grant, GrantStatus, MaintenanceRequest, RequestStatus
from maintenance.requests import SYSTEM_ACTOR, aware
from tenants.registry import Tenant, TenantStatus


@dataclass
class Ended:
    expired_requests: list[str] = field(default_factory=list)
    revoked_grants: list[int] = field(default_factory=list)
    expired_grants: list[int] = field(default_factory=list)


def _expire_requests(tenant: Tenant, note: str, ended: Ended) -> None:
    now = clock.now()
    for request in db.session.execute(select(MaintenanceRequest).where(
            MaintenanceRequest.tenant_id == tenant.id,
            MaintenanceRequest.status == RequestStatus.PENDING)).scalars().all():
        claimed = db.session.execute(
            update(MaintenanceRequest)
            .where(MaintenanceRequest.id == request.id,
                   MaintenanceRequest.status == RequestStatus.PENDING)
            .values(status=RequestStatus.EXPIRED, decided_at=now, decision_comment=note)
            .execution_options(synchronize_session=False))
        db.session.commit()
        if claimed.rowcount != 1:
            continue
        try:
            audit.append(tenant.id, "request_expired", actor_kind="system",
                         actor_name=SYSTEM_ACTOR, request_public_id=request.public_id,
                         detail={"pending_until": aware(request.pending_until).isoformat(),
                                 "comment": note})
        except BaseException:
            db.session.execute(update(MaintenanceRequest)
                               .where(MaintenanceRequest.id == request.id)
                               .values(status=RequestStatus.PENDING, decided_at=None,
                                       decision_comment=None))
            db.session.commit()
            raise
        ended.expired_requests.append(request.public_id)


def _revoke_grants(tenant: Tenant, note: str, ended: Ended) -> None:
    for grant in db.session.execute(select(Grant).where(
            Grant.tenant_id == tenant.id, Grant.status == GrantStatus.ACTIVE)).scalars().all():
        now = clock.now()
        if aware(grant.ends_at) <= now:
            if grants.expire_grant(grant):
                ended.expired_grants.append(grant.id)
            continue
        claimed = db.session.execute(
            update(Grant).where(Grant.id == grant.id, Grant.status == GrantStatus.ACTIVE)
            .values(status=GrantStatus.REVOKED, revoked_at=now, revoked_by_name=SYSTEM_ACTOR,
                    revoked_by_email=None)
            .execution_options(synchronize_session=False))
        db.session.commit()
        db.session.refresh(grant)
        if claimed.rowcount != 1:
            continue
        revocations.cut_off_role(grant.tenant, grant.role_name)
        try:
            audit.append(tenant.id, "revocation", actor_kind="system", actor_name=SYSTEM_ACTOR,
                         request_public_id=grant.request.public_id,
                         detail={"grant": grant.id, "comment": note,
                                 "ends_at": aware(grant.ends_at).isoformat()})
        except BaseException:
            # Cut off all the same (role disabled); left active so the revocation is retried.
            db.session.rollback()
            db.session.execute(update(Grant).where(Grant.id == grant.id)
                               .values(status=GrantStatus.ACTIVE, revoked_at=None,
                                       revoked_by_name=None))
            db.session.commit()
            raise
        ended.revoked_grants.append(grant.id)


def end_access(settings: Any, tenant: Tenant, note: str, *,
               by: str = "maintenance: tenant closed") -> Ended:
    """End every maintenance access of closed ``tenant`` (idempotent); ``note`` goes in the
    log entries (``"tenant closed"``; never client data), ``by`` in the deletion record's
    items of the grant roles dropped."""
    if tenant.status is not TenantStatus.CLOSED:
        raise ValueError(f"tenant {tenant.slug} is {tenant.status.value}, not closed")
    ended = Ended()
    _expire_requests(tenant, note, ended)
    _revoke_grants(tenant, note, ended)
    purge.drop_grant_roles(settings, tenant, by=by)
    return ended
