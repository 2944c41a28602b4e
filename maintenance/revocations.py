"""Revocations that could not be stored or logged yet: they end the access anyway.

When the platform database cannot take a revocation (locked, unreachable) or its log entry,
the client's will still holds: a marker file ``<instance>/maintenance-revocations/<grant>.json``
(written atomically, with who revoked, when and why) makes :func:`maintenance.access.
check_grant` refuse the grant at once (SQLite tenants: the door; PostgreSQL tenants: the role is
also made ``NOLOGIN`` and its sessions terminated), and :func:`apply_pending` — run whenever
expiries are applied (request pages, ``qalitel maintenance expire``) — stores the revocation
and appends its ``revocation`` entry as soon as the database takes them, then removes the
marker. Until then ``qalitel audit verify`` reports the revocation as not logged yet.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exists, select, update

from core import config
from core.db import db
from maintenance import audit
from maintenance.models import AccessLogEntry, Grant, GrantStatus
from maintenance.pg_roles import disable_role
from maintenance.requests import aware
from tenants.registry import Backend, Tenant

log = logging.getLogger(__name__)


class RevocationFailed(audit.AuditWriteError):
    """Neither the platform database nor the revocation marker could take the revocation.
    ``cut_off``: the grant's PostgreSQL login was disabled all the same (SQLite grants have
    no login of their own: such a grant stays usable until the database answers again)."""

    def __init__(self, *, cut_off: bool) -> None:
        super().__init__("revocation not recorded" + ("; database login cut off" if cut_off
                                                      else ""))
        self.cut_off = cut_off


def folder() -> Path:
    return config.settings().instance_dir / "maintenance-revocations"


def _path(grant_id: int) -> Path:
    return folder() / f"{int(grant_id)}.json"


def record(grant_id: int, *, name: str, email: str | None, comment: str | None,
           at: datetime) -> None:
    """Write the marker (raises OSError when even that is impossible)."""
    target = _path(grant_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_suffix(".tmp")
    scratch.write_text(json.dumps({"grant": int(grant_id), "name": name, "email": email,
                                   "comment": comment, "at": at.isoformat()}))
    os.replace(scratch, target)


def pending(grant_id: int) -> bool:
    return _path(grant_id).exists()


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
        datetime.fromisoformat(data["at"])
        return data
    except (OSError, ValueError, KeyError, TypeError):
        log.exception("unreadable revocation marker %s", path)
        return None


def _logged(grant: Grant) -> bool:
    return bool(db.session.execute(select(exists().where(
        AccessLogEntry.tenant_id == grant.tenant_id, AccessLogEntry.event == "revocation",
        AccessLogEntry.request_public_id == grant.request.public_id))).scalar())


def _apply(data: dict[str, Any]) -> None:
    grant = db.session.get(Grant, data["grant"])
    if grant is None:
        return
    at = datetime.fromisoformat(data["at"])
    if grant.status is GrantStatus.ACTIVE:
        db.session.execute(update(Grant).where(Grant.id == grant.id,
                                               Grant.status == GrantStatus.ACTIVE)
                           .values(status=GrantStatus.REVOKED, revoked_at=at,
                                   revoked_by_name=data["name"],
                                   revoked_by_email=data["email"])
                           .execution_options(synchronize_session=False))
        db.session.commit()
        db.session.refresh(grant)
    if grant.status is GrantStatus.REVOKED and not _logged(grant):
        audit.append(grant.tenant_id, "revocation", actor_kind="client",
                     actor_name=data["name"], actor_email=data["email"],
                     request_public_id=grant.request.public_id,
                     detail={"grant": grant.id, "comment": data["comment"],
                             "revoked_at": at.isoformat(), "logged_late": True})


def apply_pending() -> int:
    """Store and log every pending revocation the database now takes; how many were done."""
    base = folder()
    if not base.is_dir():
        return 0
    done = 0
    for path in sorted(base.glob("*.json")):
        data = _load(path)
        if data is None:
            continue
        try:
            _apply(data)
        except Exception:
            db.session.rollback()
            log.warning("revocation of grant %s still not stored or logged", data["grant"],
                        exc_info=True)
            continue
        path.unlink(missing_ok=True)
        done += 1
    return done


@dataclass(frozen=True)
class GrantSnapshot:
    """What a revocation needs of a grant, read before the platform database may refuse:
    after a rollback the session's objects are expired, and reloading them is what fails."""

    grant_id: int
    status: GrantStatus
    ends_at: datetime
    role_name: str | None
    tenant: Tenant

    @classmethod
    def of(cls, grant: Grant) -> GrantSnapshot:
        tenant = grant.tenant
        server = tenant.server
        if tenant.backend is Backend.POSTGRESQL and server is not None:
            _ = (server.url_encrypted, tenant.database_name, tenant.slug)
        return cls(grant.id, grant.status, grant.ends_at, grant.role_name, tenant)

    def detach(self) -> None:
        """Keep the tenant (and its server) loaded through the coming rollback."""
        for obj in (self.tenant.server, self.tenant):
            if obj is not None and obj in db.session:
                db.session.expunge(obj)

    def state(self, now: datetime) -> str:
        if self.status is GrantStatus.ACTIVE:
            return "active" if aware(self.ends_at) > now else "ended"
        return self.status.value


def cut_off_role(tenant: Tenant, role_name: str | None) -> None:
    """Make the database refuse a grant's role now (PostgreSQL); SQLite needs nothing."""
    if role_name and tenant.backend is Backend.POSTGRESQL:
        try:
            disable_role(tenant, role_name)
        except Exception:
            log.exception("could not cut off grant role %s; VALID UNTIL still ends it",
                          role_name)
