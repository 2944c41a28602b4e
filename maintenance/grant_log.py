"""What the access log says about a grant, and where the grant row contradicts it.

The platform rows of a grant (``status``, ``scope``, ``starts_at``, ``ends_at``,
``engineer_id``) can be changed by anyone with write access to the platform database; the
hash-chained log cannot, unnoticed: a changed entry breaks the chain, an added or removed one
the sealed head (whose key is not in the database). So the door (:func:`maintenance.access.
check_grant`) and the verifier (:mod:`maintenance.audit_verify`) both take a grant's terms
from the log — the ``request`` entry (the engineer), the ``approval`` entry (scope and
window), any ``revocation`` or ``grant_expired`` entry — and refuse a row that says more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from core import clock
from core.db import db
from maintenance.audit_read import _entries, _heads, _snapshot
from maintenance.models import Grant
from maintenance.seals import SealKeyError, seal_ok
from maintenance.verify_log import ChainChecker
from tenants.registry import Tenant

ENDING_EVENTS = ("revocation", "grant_expired")


class LogUntrusted(RuntimeError):
    """The tenant's log does not verify against its sealed head: nothing in it is trusted."""


@dataclass
class Evidence:
    """One request's entries, as the verified log holds them."""

    engineer_email: str | None = None
    approval: dict[str, Any] | None = None
    endings: list[str] = field(default_factory=list)

    def add(self, entry: dict[str, Any]) -> None:
        if entry["event"] == "request":
            self.engineer_email = entry["actor_email"]
        elif entry["event"] == "approval":
            self.approval = entry["detail"] if isinstance(entry["detail"], dict) else {}
        elif entry["event"] in ENDING_EVENTS:
            self.endings.append(entry["event"])


aware = clock.as_utc  # stored datetimes as UTC (SQLite hands them back naive)


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return aware(datetime.fromisoformat(value))
    except ValueError:
        return None


def mismatch(evidence: Evidence | None, *, scope: str, starts_at: datetime, ends_at: datetime,
             engineer_email: str | None, active: bool) -> str | None:
    """Why the grant row is not what the log approved, or None when it agrees."""
    if evidence is None or evidence.approval is None:
        return "the log holds no approval for this grant"
    if active and evidence.endings:
        return f"the log records its end ({evidence.endings[0]}), yet the grant is active"
    approval = evidence.approval
    if approval.get("scope") != scope:
        return (f"the scope {scope!r} is not the approved one "
                f"({approval.get('scope')!r})")
    if _moment(approval.get("starts_at")) != aware(starts_at):
        return "the start of the window is not the approved one"
    if _moment(approval.get("ends_at")) != aware(ends_at):
        return "the end of the window is not the approved one"
    if evidence.engineer_email is None or evidence.engineer_email != engineer_email:
        return "the engineer is not the one who made the request"
    return None


def read_verified(tenant_id: int, public_ids: set[str] | None = None) -> dict[str, Evidence]:
    """Evidence per request public id (all, or those in ``public_ids``), from a log whose
    whole chain was checked and ends at its genuine sealed head; LogUntrusted otherwise."""
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        raise LogUntrusted(f"no tenant with id {tenant_id}")
    found: dict[str, Evidence] = {}
    with db.engine.connect() as raw:
        conn = _snapshot(raw)
        try:
            head = conn.execute(select(_heads).where(_heads.c.tenant_id == tenant_id)
                                ).one_or_none()
            checker = ChainChecker(tenant.uid)
            for entry in _entries(conn, tenant_id, tenant.uid):
                problem = checker.check(entry)
                if problem is not None:
                    raise LogUntrusted(f"entry {problem[0]}: {problem[1]}")
                public_id = entry["request_public_id"]
                if public_id and (public_ids is None or public_id in public_ids):
                    found.setdefault(public_id, Evidence()).add(entry)
        finally:
            conn.rollback()
    try:
        genuine = head is not None and seal_ok(tenant.uid, head.entry_count, head.last_hash,
                                               head.seal)
    except SealKeyError as exc:
        raise LogUntrusted(f"the head's seal cannot be checked: {exc}") from exc
    if checker.count == 0 and head is None:
        return found
    if not genuine or (head.entry_count, head.last_hash) != (checker.count, checker.last_hash):
        raise LogUntrusted("the log does not end at its sealed head")
    return found


def grant_mismatch(grant: Grant, engineer_email: str | None) -> str | None:
    """For the door: why this grant row is not backed by the verified log, or None."""
    public_id = grant.request.public_id
    try:
        evidence = read_verified(grant.tenant_id, {public_id}).get(public_id)
    except LogUntrusted as exc:
        return f"the access log does not verify ({exc})"
    return mismatch(evidence, scope=grant.scope.value, starts_at=grant.starts_at,
                    ends_at=grant.ends_at, engineer_email=engineer_email, active=True)
