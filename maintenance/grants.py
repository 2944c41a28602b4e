"""The client's decisions on maintenance requests, and the grants they open.

Only a client administrator decides (``approve``, ``deny``) and any of them may ``revoke``
an active grant at any time; nothing here is reachable from the staff console or the
``qalitel`` command. Every decision is claimed with one conditional ``UPDATE`` (pending →
decided, active → revoked/expired), so a replayed or racing decision finds nothing to claim
and is refused (:class:`ReplayError`) without a second log entry.

**Enforced by the database.** On PostgreSQL each grant gets a login role of its own with
column privileges computed from :mod:`maintenance.allow_list` (:mod:`maintenance.pg_roles`);
on SQLite, :mod:`maintenance.sqlite_door` opens the file with an authorizer enforcing the
same list (read-only for the read scope).

**Order.** Approval: claim the request, create the role, append ``approval`` to the access
log, and only then store the grant (no grant exists before its approval is logged); a failure
undoes the role and the claim. Revocation: claim, cut the role off, then append
``revocation`` (the client's will holds even when the log is down; the caller is told).
Expiry (``grant_expired``) is applied by ``qalitel maintenance expire`` and lazily whenever a
grant is read, with the controllable :mod:`core.clock`.

**Commits.** These commit on their own, on purpose: a claim is committed before its log entry
is appended (on SQLite an uncommitted platform write holds the lock the append needs), and
the state the entry speaks of before returning, since the entry is committed on its own: a
later rollback must not leave the log saying "approved" about a state that was undone.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from core import clock
from core.db import db
from core.validation import is_id
from maintenance import audit, revocations
from maintenance import requests as maintenance_requests
from maintenance.models import Grant, GrantStatus, MaintenanceRequest, RequestStatus, Scope
from maintenance.pg_roles import create_role, drop_role
from maintenance.requests import SYSTEM_ACTOR, aware
from tenants.registry import Backend, Tenant

log = logging.getLogger(__name__)

COMMENT_MAX = 1000
PUBLIC_ID_MAX = 36


class DecisionError(ValueError):
    """Bad input for a decision (shorter-or-equal hours, narrower-or-equal scope, comment)."""


class ReplayError(RuntimeError):
    """The request is no longer pending (or the grant no longer active): nothing to decide."""


@dataclass(frozen=True)
class ClientAdmin:
    """The client administrator deciding, as the access log names them."""

    user_id: int
    name: str
    email: str


# ---------------------------------------------------------------- input


def clean_comment(comment: object, *, required: bool = False) -> str | None:
    if comment is None or (isinstance(comment, str) and not comment.strip()):
        if required:
            raise DecisionError("a comment is required")
        return None
    if not isinstance(comment, str):
        raise DecisionError("the comment is text")
    cleaned = comment.strip().replace("\r\n", "\n")
    if len(cleaned) > COMMENT_MAX:
        raise DecisionError(f"the comment must be at most {COMMENT_MAX} characters")
    if any(not (c.isprintable() or c in "\n\t") for c in cleaned):
        raise DecisionError("the comment contains control characters")
    return cleaned


def clean_window(request: MaintenanceRequest, hours: object,
                 scope: object) -> tuple[float, Scope]:
    """The approved duration and scope: the request's, or narrower — never wider."""
    if hours is None or (isinstance(hours, str) and not hours.strip()):
        granted_hours = float(request.hours)
    else:
        if isinstance(hours, bool) or not isinstance(hours, int | float | str):
            raise DecisionError("the duration is a number of hours")
        try:
            granted_hours = float(hours.replace(",", ".") if isinstance(hours, str) else hours)
        except ValueError:
            raise DecisionError("the duration is a number of hours") from None
        if not math.isfinite(granted_hours) or granted_hours <= 0:
            raise DecisionError("the duration must be a positive number of hours")
        if granted_hours > request.hours + 1e-9:
            raise DecisionError(f"the duration may be shortened, not lengthened (at most "
                                f"{request.hours:g} hours)")
    if scope is None or scope == "":
        granted_scope = request.scope
    else:
        try:
            granted_scope = Scope(scope) if isinstance(scope, str) else None
        except ValueError:
            granted_scope = None
        if granted_scope is None:
            raise DecisionError("the scope is 'read' or 'read-write'")
        if granted_scope is Scope.READ_WRITE and request.scope is Scope.READ:
            raise DecisionError("the scope may be narrowed to read, not widened")
    return granted_hours, granted_scope


# ---------------------------------------------------------------- lookups (one tenant only)


def request_of_tenant(tenant_id: int, public_id: object) -> MaintenanceRequest | None:
    """This tenant's request by public id; None for another tenant's or a forged id."""
    if not isinstance(public_id, str) or not 0 < len(public_id) <= PUBLIC_ID_MAX:
        return None
    return db.session.execute(
        select(MaintenanceRequest).where(MaintenanceRequest.tenant_id == tenant_id,
                                         MaintenanceRequest.public_id == public_id)
        .execution_options(populate_existing=True)).scalar_one_or_none()


def grant_of_tenant(tenant_id: int, grant_id: object) -> Grant | None:
    if not is_id(grant_id):
        return None
    return db.session.execute(
        select(Grant).where(Grant.tenant_id == tenant_id, Grant.id == grant_id)
        .execution_options(populate_existing=True)).scalar_one_or_none()


def requests_of_tenant(tenant_id: int, limit: int = 200) -> list[MaintenanceRequest]:
    """The tenant's requests, newest first, after applying any due expiry."""
    expire_lazily(tenant_id)
    return list(db.session.execute(
        select(MaintenanceRequest).where(MaintenanceRequest.tenant_id == tenant_id)
        .order_by(MaintenanceRequest.created_at.desc(), MaintenanceRequest.id.desc())
        .limit(limit)).scalars())


def active_grants(tenant_id: int) -> list[Grant]:
    found = db.session.execute(
        select(Grant).where(Grant.tenant_id == tenant_id, Grant.status == GrantStatus.ACTIVE,
                            Grant.ends_at > clock.now())
        .order_by(Grant.ends_at)).scalars()
    return [grant for grant in found if not revocations.pending(grant.id)]


def pending_count(tenant_id: int) -> int:
    """Requests awaiting this tenant's decision (one indexed count on the platform DB)."""
    return int(db.session.execute(
        select(func.count()).select_from(MaintenanceRequest)
        .where(MaintenanceRequest.tenant_id == tenant_id,
               MaintenanceRequest.status == RequestStatus.PENDING,
               MaintenanceRequest.pending_until > clock.now())).scalar_one())


# ---------------------------------------------------------------- decisions


def _describe(status: RequestStatus) -> str:
    return f"this request is already {status.value}"


def _claim(request: MaintenanceRequest, status: RequestStatus, admin: ClientAdmin,
           comment: str | None) -> datetime:
    """Move the request from pending to ``status`` if nobody did first; ReplayError if not."""
    now = clock.now()
    claimed = db.session.execute(
        update(MaintenanceRequest)
        .where(MaintenanceRequest.id == request.id,
               MaintenanceRequest.status == RequestStatus.PENDING,
               MaintenanceRequest.pending_until > now)
        .values(status=status, decided_at=now, decided_by_user_id=admin.user_id,
                decided_by_name=admin.name, decided_by_email=admin.email,
                decision_comment=comment)
        .execution_options(synchronize_session=False))
    db.session.commit()
    if claimed.rowcount != 1:
        maintenance_requests.expire_lazily(request.tenant_id)
        db.session.refresh(request)
        raise ReplayError(_describe(request.status) if request.status is not
                          RequestStatus.PENDING else "this request can no longer be decided")
    return now


def _unclaim(request: MaintenanceRequest, status: RequestStatus) -> None:
    db.session.rollback()
    db.session.execute(
        update(MaintenanceRequest)
        .where(MaintenanceRequest.id == request.id, MaintenanceRequest.status == status)
        .values(status=RequestStatus.PENDING, decided_at=None, decided_by_user_id=None,
                decided_by_name=None, decided_by_email=None, decision_comment=None)
        .execution_options(synchronize_session=False))
    db.session.commit()


def approve(request: MaintenanceRequest, admin: ClientAdmin, *, hours: object = None,
            scope: object = None, comment: object = None) -> Grant:
    """Approve a pending request (optionally shorter, or read instead of read-write).

    Raises DecisionError (bad input), ReplayError (not pending any more), AuditWriteError
    (the approval could not be logged: nothing was approved).
    """
    granted_hours, granted_scope = clean_window(request, hours, scope)
    note = clean_comment(comment)
    now = _claim(request, RequestStatus.APPROVED, admin, note)
    tenant: Tenant = request.tenant
    ends = now + timedelta(hours=granted_hours)
    role: str | None = None
    password_encrypted: str | None = None
    try:
        if tenant.backend is Backend.POSTGRESQL:
            role, password_encrypted = create_role(tenant, granted_scope, ends)
        audit.append(tenant.id, "approval", actor_kind="client", actor_name=admin.name,
                     actor_email=admin.email, request_public_id=request.public_id,
                     detail={"scope": granted_scope.value, "hours": granted_hours,
                             "requested_scope": request.scope.value,
                             "requested_hours": request.hours,
                             "starts_at": now.isoformat(), "ends_at": ends.isoformat(),
                             "comment": note})
    except BaseException:
        if role is not None:
            try:
                drop_role(tenant, role)
            except Exception:
                log.exception("could not drop grant role %s after a failed approval", role)
        _unclaim(request, RequestStatus.APPROVED)
        raise
    grant = Grant(request_id=request.id, tenant_id=tenant.id, engineer_id=request.engineer_id,
                  scope=granted_scope, starts_at=now, ends_at=ends, status=GrantStatus.ACTIVE,
                  role_name=role, role_password_encrypted=password_encrypted)
    db.session.add(grant)
    db.session.commit()
    return grant


def deny(request: MaintenanceRequest, admin: ClientAdmin, comment: object) -> MaintenanceRequest:
    """Deny a pending request; the comment (required) tells the engineer why."""
    note = clean_comment(comment, required=True)
    _claim(request, RequestStatus.DENIED, admin, note)
    try:
        audit.append(request.tenant_id, "denial", actor_kind="client", actor_name=admin.name,
                     actor_email=admin.email, request_public_id=request.public_id,
                     detail={"comment": note})
    except BaseException:
        _unclaim(request, RequestStatus.DENIED)
        raise
    db.session.refresh(request)
    return request


class RevocationPending(audit.AuditWriteError):
    """The access ended, but the revocation is not stored and logged yet (it will be)."""


def revoke(grant: Grant, admin: ClientAdmin, comment: object = None) -> Grant:
    """End an active grant now: refused at the engineer's next request, PostgreSQL role cut off
    and its sessions terminated. Raises ReplayError when the grant is not active any more;
    RevocationPending when the access ended but the platform database could not store or log
    it yet (:mod:`maintenance.revocations` does, as soon as it can)."""
    note = clean_comment(comment)
    now = clock.now()
    loaded = revocations.GrantSnapshot.of(grant)
    try:
        claimed = db.session.execute(
            update(Grant)
            .where(Grant.id == grant.id, Grant.status == GrantStatus.ACTIVE, Grant.ends_at > now)
            .values(status=GrantStatus.REVOKED, revoked_at=now, revoked_by_name=admin.name,
                    revoked_by_email=admin.email)
            .execution_options(synchronize_session=False))
        db.session.commit()
    except SQLAlchemyError as exc:
        loaded.detach()
        db.session.rollback()
        state = loaded.state(now)
        if state != "active":
            raise ReplayError(f"this grant is already {state}") from exc
        try:
            _revoke_offline(loaded, admin, note, now)
        except OSError as marker_exc:
            raise revocations.RevocationFailed(
                cut_off=bool(loaded.role_name and loaded.tenant.backend is Backend.POSTGRESQL)
            ) from marker_exc
        raise RevocationPending(f"grant {grant.id} revoked, not stored yet: {exc}") from exc
    db.session.refresh(grant)
    if claimed.rowcount != 1:
        expire_lazily(grant.tenant_id)
        db.session.refresh(grant)
        raise ReplayError(f"this grant is already {grant.status.value}"
                          if grant.status is not GrantStatus.ACTIVE
                          else "this grant has ended")
    _cut_off(grant)
    try:
        audit.append(grant.tenant_id, "revocation", actor_kind="client", actor_name=admin.name,
                     actor_email=admin.email, request_public_id=grant.request.public_id,
                     detail={"grant": grant.id, "comment": note,
                             "ends_at": aware(grant.ends_at).isoformat()})
    except audit.AuditWriteError as exc:
        _remember(grant, admin, note, now)
        raise RevocationPending(f"grant {grant.id} revoked, not logged yet: {exc}") from exc
    return grant


def _remember(grant: Grant, admin: ClientAdmin, note: str | None, now: datetime) -> None:
    try:
        revocations.record(grant.id, name=admin.name, email=admin.email, comment=note, at=now)
    except OSError:
        log.exception("revocation of grant %s could not even be remembered", grant.id)


def _revoke_offline(loaded: revocations.GrantSnapshot, admin: ClientAdmin, note: str | None,
                    now: datetime) -> None:
    """The platform database refused the claim: the PostgreSQL role is cut off first, then
    the marker makes the door refuse the grant (an OSError from it still propagates, after
    the cut-off); storing and logging wait for the database."""
    try:
        revocations.cut_off_role(loaded.tenant, loaded.role_name)
    finally:
        revocations.record(loaded.grant_id, name=admin.name, email=admin.email, comment=note,
                           at=now)


# ---------------------------------------------------------------- expiry


def expire_grant(grant: Grant) -> bool:
    """Expire an active grant whose window has ended (once, whoever calls first)."""
    now = clock.now()
    claimed = db.session.execute(
        update(Grant)
        .where(Grant.id == grant.id, Grant.status == GrantStatus.ACTIVE, Grant.ends_at <= now)
        .values(status=GrantStatus.EXPIRED)
        .execution_options(synchronize_session=False))
    db.session.commit()
    db.session.refresh(grant)
    if claimed.rowcount != 1:
        return False
    _cut_off(grant)
    try:
        audit.append(grant.tenant_id, "grant_expired", actor_kind="system",
                     actor_name=SYSTEM_ACTOR, request_public_id=grant.request.public_id,
                     detail={"grant": grant.id, "ends_at": aware(grant.ends_at).isoformat()})
    except BaseException:
        # Still refused (its window is over); left active so that the expiry is logged later.
        db.session.rollback()
        db.session.execute(update(Grant).where(Grant.id == grant.id,
                                               Grant.status == GrantStatus.EXPIRED)
                           .values(status=GrantStatus.ACTIVE))
        db.session.commit()
        raise
    return True


def expire_grants(tenant_id: int | None = None) -> list[Grant]:
    """Expire every active grant past its end (for cron: ``qalitel maintenance expire``)."""
    query = select(Grant).where(Grant.status == GrantStatus.ACTIVE,
                                Grant.ends_at <= clock.now())
    if tenant_id is not None:
        query = query.where(Grant.tenant_id == tenant_id)
    return [grant for grant in db.session.execute(query).scalars().all() if expire_grant(grant)]


def expire_lazily(tenant_id: int | None = None) -> None:
    """Apply due expiries of requests and grants, and pending revocations, for a page; an
    outage does not break it."""
    try:
        revocations.apply_pending()
    except Exception:
        db.session.rollback()
        log.exception("could not apply pending revocations")
    maintenance_requests.expire_lazily(tenant_id)
    try:
        expire_grants(tenant_id)
    except Exception:
        db.session.rollback()
        log.exception("could not expire ended maintenance grants")


def expire_grant_lazily(grant: Grant) -> None:
    """For :mod:`maintenance.access`: the grant is refused anyway; record its expiry."""
    try:
        expire_grant(grant)
    except Exception:
        db.session.rollback()
        log.exception("could not expire maintenance grant %s", grant.id)


def _cut_off(grant: Grant) -> None:
    """Make the database refuse the grant's role now (PostgreSQL); SQLite needs nothing."""
    revocations.cut_off_role(grant.tenant, grant.role_name)
