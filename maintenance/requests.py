"""Maintenance requests: an engineer asks a client for a window on its database.

Nothing here approves anything: approval belongs to the client's administrator
(``maintenance.grants``). A pending request expires ``maintenance_pending_hours`` after it
was made; expiry is applied lazily wherever requests are read, and by ``qalitel
maintenance expire`` for cron. Every request and every expiry is appended to the tenant's
access log.

Like :mod:`maintenance.grants`, these services commit on their own: a request or an expiry is
committed before its log entry is appended (see :func:`create_request`), and a failed append
undoes it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update

from core import clock, config, platform_transaction
from core.config import Settings
from core.db import db
from maintenance import audit
from maintenance.models import MaintenanceRequest, RequestStatus, Scope, StaffUser
from tenants.registry import InvalidSlugError, Tenant, TenantStatus, validate_slug

log = logging.getLogger(__name__)

REASON_MAX = 2000
TICKET_MAX = 100
SYSTEM_ACTOR = "QALITEL"

#: Called with each new request once it is stored and logged (e-mails, banner…); what a hook
#: queues with :func:`core.platform_transaction.after_commit` runs when ``create_request``
#: commits at its end. A failing hook is logged; it never undoes the request.
on_request_created: list[Callable[[MaintenanceRequest], None]] = []


class RequestError(ValueError):
    """A request that cannot be made (bad input, unknown or inactive tenant)."""


aware = clock.as_utc  # stored datetimes as UTC (SQLite hands them back naive)


def _settings() -> Settings:
    return config.settings()


def clean_reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise RequestError("a reason is required")
    cleaned = reason.strip().replace("\r\n", "\n")
    if len(cleaned) > REASON_MAX:
        raise RequestError(f"the reason must be at most {REASON_MAX} characters")
    if any(not (c.isprintable() or c in "\n\t") for c in cleaned):
        raise RequestError("the reason contains control characters")
    return cleaned


def clean_ticket(ticket: object) -> str | None:
    if ticket is None or (isinstance(ticket, str) and not ticket.strip()):
        return None
    if not isinstance(ticket, str):
        raise RequestError("invalid ticket reference")
    cleaned = ticket.strip()
    if len(cleaned) > TICKET_MAX or not cleaned.isprintable():
        raise RequestError(f"the ticket reference must be at most {TICKET_MAX} printable "
                           "characters")
    return cleaned


def clean_scope(scope: object) -> Scope:
    try:
        return Scope(scope or Scope.READ.value)
    except ValueError:
        raise RequestError("the scope is 'read' or 'read-write'") from None


def clean_hours(hours: object) -> float:
    settings = _settings()
    if hours is None or hours == "":
        return float(settings.maintenance_default_hours)
    try:
        value = float(hours)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RequestError("the duration is a number of hours") from None
    if not math.isfinite(value) or value <= 0:
        raise RequestError("the duration must be a positive number of hours")
    if value > settings.maintenance_max_hours:
        raise RequestError(f"the duration is capped at {settings.maintenance_max_hours:g} hours")
    return value


def _tenant(tenant: Tenant | str) -> Tenant:
    if isinstance(tenant, Tenant):
        return tenant
    try:
        slug = validate_slug(tenant)
    except InvalidSlugError as exc:
        raise RequestError(str(exc)) from None
    row = db.session.execute(select(Tenant).where(Tenant.slug == slug)).scalar_one_or_none()
    if row is None:
        raise RequestError(f"no tenant {slug!r}")
    return row


def create_request(tenant: Tenant | str, engineer: StaffUser, reason: object, *,
                   ticket: object = None, scope: object = None,
                   hours: object = None) -> MaintenanceRequest:
    """Store and log a pending request; raises RequestError or audit.AuditWriteError.

    This service commits on its own, for a reason: the request is committed *before* its
    ``request`` log entry is appended (on SQLite an uncommitted platform write holds the lock
    the append needs, and the log must never name a request that was not stored); when the
    append fails, the request is deleted again. Only then do the hooks run, and the mail they
    queue leaves after the final commit, so a request that was undone is never mailed.
    """
    row = _tenant(tenant)
    if row.status is not TenantStatus.ACTIVE:
        raise RequestError(f"tenant {row.slug} is {row.status.value}")
    if not engineer.active:
        raise RequestError(f"staff account {engineer.email} is deactivated")
    values = {"reason": clean_reason(reason), "ticket": clean_ticket(ticket),
              "scope": clean_scope(scope), "hours": clean_hours(hours)}
    now = clock.now()
    request = MaintenanceRequest(
        tenant_id=row.id, engineer_id=engineer.id, status=RequestStatus.PENDING,
        created_at=now, pending_until=now + timedelta(hours=_settings().maintenance_pending_hours),
        **values)
    db.session.add(request)
    db.session.commit()
    try:
        audit.append(row.id, "request", actor_kind="staff", actor_name=engineer.name,
                     actor_email=engineer.email, request_public_id=request.public_id,
                     detail={"reason": request.reason, "ticket": request.ticket,
                             "scope": request.scope.value, "hours": request.hours,
                             "pending_until": aware(request.pending_until).isoformat()})
    except Exception:
        db.session.rollback()
        db.session.delete(request)
        db.session.commit()
        raise
    for hook in list(on_request_created):
        try:
            hook(request)
        except Exception:
            log.exception("on_request_created hook %r failed for %s", hook, request.public_id)
    platform_transaction.commit()  # the request stands: what the hooks queued (mail) goes
    return request


def expire_overdue(tenant_id: int | None = None) -> list[MaintenanceRequest]:
    """Expire pending requests past their deadline (each once, even with racing callers)."""
    now = clock.now()
    query = select(MaintenanceRequest).where(MaintenanceRequest.status == RequestStatus.PENDING,
                                             MaintenanceRequest.pending_until <= now)
    if tenant_id is not None:
        query = query.where(MaintenanceRequest.tenant_id == tenant_id)
    expired = []
    for request in db.session.execute(query).scalars().all():
        claimed = db.session.execute(
            update(MaintenanceRequest)
            .where(MaintenanceRequest.id == request.id,
                   MaintenanceRequest.status == RequestStatus.PENDING)
            .values(status=RequestStatus.EXPIRED, decided_at=now))
        db.session.commit()
        if claimed.rowcount != 1:
            continue
        try:
            audit.append(request.tenant_id, "request_expired", actor_kind="system",
                         actor_name=SYSTEM_ACTOR, request_public_id=request.public_id,
                         detail={"pending_until": aware(request.pending_until).isoformat()})
        except Exception:
            db.session.execute(
                update(MaintenanceRequest)
                .where(MaintenanceRequest.id == request.id,
                       MaintenanceRequest.status == RequestStatus.EXPIRED)
                .values(status=RequestStatus.PENDING, decided_at=None))
            db.session.commit()
            raise
        db.session.refresh(request)
        expired.append(request)
    return expired


def expire_lazily(tenant_id: int | None = None) -> None:
    """``expire_overdue`` for pages: a log outage must not take the page down with it."""
    try:
        expire_overdue(tenant_id)
    except Exception:
        db.session.rollback()
        log.exception("could not expire overdue maintenance requests")


def requests_of(engineer: StaffUser, tenant_id: int | None = None,
                limit: int = 200) -> list[MaintenanceRequest]:
    expire_lazily(tenant_id)
    query = select(MaintenanceRequest).where(MaintenanceRequest.engineer_id == engineer.id)
    if tenant_id is not None:
        query = query.where(MaintenanceRequest.tenant_id == tenant_id)
    query = query.order_by(MaintenanceRequest.created_at.desc(), MaintenanceRequest.id.desc())
    return list(db.session.execute(query.limit(limit)).scalars())


def request_of(engineer: StaffUser, public_id: str,
               tenant_id: int | None = None) -> MaintenanceRequest | None:
    """This engineer's request (of this tenant, when given), or None — never another's."""
    if not isinstance(public_id, str) or len(public_id) > 36:
        return None
    query = select(MaintenanceRequest).where(MaintenanceRequest.public_id == public_id,
                                             MaintenanceRequest.engineer_id == engineer.id)
    if tenant_id is not None:
        query = query.where(MaintenanceRequest.tenant_id == tenant_id)
    request = db.session.execute(query).scalar_one_or_none()
    if request is not None and request.status is RequestStatus.PENDING:
        expire_lazily(request.tenant_id)
        db.session.refresh(request)
    return request


def all_requests(tenant_id: int | None = None, status: RequestStatus | None = None,
                 limit: int = 500) -> list[MaintenanceRequest]:
    """Requests for operators (CLI), newest first."""
    expire_lazily(tenant_id)
    query = select(MaintenanceRequest)
    if tenant_id is not None:
        query = query.where(MaintenanceRequest.tenant_id == tenant_id)
    if status is not None:
        query = query.where(MaintenanceRequest.status == status)
    query = query.order_by(MaintenanceRequest.created_at.desc(), MaintenanceRequest.id.desc())
    return list(db.session.execute(query.limit(limit)).scalars())
