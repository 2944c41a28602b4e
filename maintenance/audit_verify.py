"""Verifying a tenant's access log against everything that can contradict it.

1. the hash chain itself (:class:`maintenance.verify_log.ChainChecker`, as the standalone
   verifier does);
2. the sealed head: the newest entries removed, or entries added behind the log's back;
3. the witness files (:mod:`maintenance.witness`): a rollback to an older genuine head, or a
   rewrite re-sealed with the key;
4. the platform's requests and grants: each request, decision, expiry and revocation they
   record must have its entry (an emptied or shortened log fails even with a consistent head),
   and each grant row must say what its log entries say (:mod:`maintenance.grant_log`: scope,
   window, engineer; not active after its revocation or expiry);
5. a purge record (:mod:`maintenance.purge`): a purged log verifies *as a purge* only when the
   record's seal is genuine, the tenant closed and nothing witnessed lies beyond it.
"""

from __future__ import annotations

from sqlalchemy import select

from core.db import db
from maintenance import witness
from maintenance.audit_read import VerifyResult, _entries, _heads, _snapshot, _tenant
from maintenance.grant_log import Evidence, mismatch
from maintenance.models import (
    AccessLogPurge,
    Grant,
    GrantStatus,
    MaintenanceRequest,
    RequestStatus,
    StaffUser,
)
from maintenance.seals import purge_seal_ok, seal_ok
from maintenance.verify_log import ChainChecker
from tenants.registry import Tenant, TenantStatus

DECISION_EVENTS = {RequestStatus.APPROVED: "approval", RequestStatus.DENIED: "denial",
                   RequestStatus.EXPIRED: "request_expired"}
GRANT_EVENTS = {GrantStatus.REVOKED: "revocation", GrantStatus.EXPIRED: "grant_expired"}


def purge_record(tenant_uid: str) -> AccessLogPurge | None:
    return db.session.execute(select(AccessLogPurge).where(
        AccessLogPurge.tenant_uid == tenant_uid)).scalar_one_or_none()


def verify_tenant(tenant_id: int) -> VerifyResult:
    tenant = _tenant(tenant_id)
    seen = witness.read(tenant.uid)
    purge = purge_record(tenant.uid)
    events: set[tuple[str, str]] = set()
    evidence: dict[str, Evidence] = {}
    contradicted: int | None = None
    with db.engine.connect() as raw:
        conn = _snapshot(raw)
        head = conn.execute(select(_heads).where(_heads.c.tenant_id == tenant_id)).one_or_none()
        checker = ChainChecker(tenant.uid)
        for entry in _entries(conn, tenant_id, tenant.uid):
            problem = checker.check(entry)
            if problem is None and head is not None and entry["seq"] > head.entry_count:
                problem = entry["seq"], (f"entry {entry['seq']} lies beyond the sealed head "
                                         f"({head.entry_count} entries): added behind the "
                                         "log's back")
            if problem:
                valid = min(checker.count, problem[0] - 1)
                return VerifyResult(False, valid, problem[0], problem[1], checker.last_hash)
            if entry["request_public_id"]:
                events.add((entry["event"], entry["request_public_id"]))
                evidence.setdefault(entry["request_public_id"], Evidence()).add(entry)
            if contradicted is None and seen.entries.get(entry["seq"], entry["hash"]) \
                    != entry["hash"]:
                contradicted = entry["seq"]
        conn.rollback()
    count, last = checker.count, checker.last_hash
    if purge is not None:
        return _purged(tenant, purge, count, seen)
    verdict = _against_head(tenant, head, count, last)
    if verdict is None:
        verdict = _against_witness(seen, count, last, contradicted)
    if verdict is None:
        verdict = _against_requests(tenant_id, events, count, last)
    if verdict is None:
        verdict = _against_grants(tenant_id, evidence, count, last)
    return verdict or VerifyResult(True, count, None, None, last)


def _against_head(tenant: Tenant, head, count: int, last: str) -> VerifyResult | None:
    if head is None:
        if count:
            return VerifyResult(False, count, 1, "the log has no sealed head", last)
        return None
    if not seal_ok(tenant.uid, head.entry_count, head.last_hash, head.seal):
        return VerifyResult(False, count, head.entry_count,
                            "the head's seal is wrong (head altered)", last)
    if head.entry_count > count:
        missing = count + 1
        return VerifyResult(False, count, missing,
                            f"entry {missing} is missing: the sealed head records "
                            f"{head.entry_count} entries (the newest removed)", last)
    if head.last_hash != last:
        return VerifyResult(False, count, count,
                            f"the chain does not end at the hash the sealed head records for "
                            f"entry {count} (entries rewritten and chained again)", last)
    return None


def _against_witness(seen: witness.Witnessed, count: int, last: str,
                     contradicted: int | None) -> VerifyResult | None:
    if seen.unreadable:
        return VerifyResult(False, count, count + 1, f"the witness file has unreadable lines "
                            f"{seen.unreadable[:5]} (edited?)", last)
    if seen.purged is not None:
        return VerifyResult(False, count, 1, "the witness saw this log purged, yet no purge "
                            "record remains (record removed)", last)
    if seen.conflicts:
        seq = min(seen.conflicts)
        return VerifyResult(False, min(count, seq - 1), seq,
                            f"the witness saw two different entries {seq}: the log was rolled "
                            "back and written again", last)
    if contradicted is not None:
        return VerifyResult(False, contradicted - 1, contradicted,
                            f"entry {contradicted} is not the one the witness saw (log "
                            "rewritten and sealed again)", last)
    if seen.highest > count:
        return VerifyResult(False, count, count + 1,
                            f"the witness saw {seen.highest} entries, the log has {count}: "
                            "rolled back to an earlier head", last)
    return None


def _against_requests(tenant_id: int, events: set[tuple[str, str]], count: int,
                      last: str) -> VerifyResult | None:
    rows = db.session.execute(
        select(MaintenanceRequest.public_id, MaintenanceRequest.status, Grant.id, Grant.status)
        .outerjoin(Grant, Grant.request_id == MaintenanceRequest.id)
        .where(MaintenanceRequest.tenant_id == tenant_id)
        .order_by(MaintenanceRequest.created_at, MaintenanceRequest.id)).all()
    for public_id, status, grant_id, grant_status in rows:
        expected = ["request"]
        if status in DECISION_EVENTS:
            expected.append(DECISION_EVENTS[status])
        if grant_id is not None:
            expected.append("approval")
            if grant_status in GRANT_EVENTS:
                expected.append(GRANT_EVENTS[grant_status])
        for event in expected:
            if (event, public_id) not in events:
                return VerifyResult(False, count, count + 1,
                                    f"request {public_id} ({status.value}) has no {event!r} "
                                    "entry in the log (entries removed, or not logged yet)",
                                    last)
    return None


def _against_grants(tenant_id: int, evidence: dict[str, Evidence], count: int,
                    last: str) -> VerifyResult | None:
    rows = db.session.execute(
        select(MaintenanceRequest.public_id, Grant.id, Grant.scope, Grant.starts_at,
               Grant.ends_at, Grant.status, StaffUser.email)
        .join(Grant, Grant.request_id == MaintenanceRequest.id)
        .outerjoin(StaffUser, StaffUser.id == Grant.engineer_id)
        .where(MaintenanceRequest.tenant_id == tenant_id)
        .order_by(Grant.id)).all()
    for public_id, grant_id, scope, starts_at, ends_at, status, email in rows:
        problem = mismatch(evidence.get(public_id), scope=scope.value, starts_at=starts_at,
                           ends_at=ends_at, engineer_email=email,
                           active=status is GrantStatus.ACTIVE)
        if problem is not None:
            return VerifyResult(False, count, count + 1,
                                f"grant {grant_id} of request {public_id} contradicts the log: "
                                f"{problem} (grant row altered)", last)
    return None


def _purged(tenant: Tenant, purge: AccessLogPurge, count: int,
            seen: witness.Witnessed) -> VerifyResult:
    def broken(reason: str) -> VerifyResult:
        return VerifyResult(False, 0, 1, reason, purge.last_hash)

    if not purge_seal_ok(purge):
        return broken("the purge record's seal is wrong: a forged purge")
    if tenant.status is not TenantStatus.CLOSED:
        return broken(f"the log was purged, yet the tenant is {tenant.status.value}")
    if count:
        return broken(f"{count} entries remain after the purge")
    return _purge_verdict(purge, seen) or VerifyResult(
        True, purge.entry_count, None, None, purge.last_hash, purged_at=purge.purged_at)


def _purge_verdict(purge: AccessLogPurge, seen: witness.Witnessed) -> VerifyResult | None:
    """The witness against a genuine purge record: nothing witnessed beyond what it covers."""
    if seen.conflicts or seen.highest > purge.entry_count or \
            seen.entries.get(purge.entry_count, purge.last_hash) != purge.last_hash:
        return VerifyResult(False, 0, purge.entry_count + 1,
                            f"the witness saw entries the purge record ({purge.entry_count} "
                            "entries) does not cover: rolled back before the purge",
                            purge.last_hash)
    return None


def verify_purges() -> list[tuple[AccessLogPurge, VerifyResult]]:
    """Purge records of tenants whose registry row is gone, each with its verdict."""
    known = select(Tenant.uid)
    result = []
    for purge in db.session.execute(select(AccessLogPurge).where(
            AccessLogPurge.tenant_uid.not_in(known)).order_by(AccessLogPurge.id)).scalars():
        if not purge_seal_ok(purge):
            verdict = VerifyResult(False, 0, 1, "the purge record's seal is wrong: a forged "
                                   "purge", purge.last_hash)
        else:
            verdict = _purge_verdict(purge, witness.read(purge.tenant_uid)) or VerifyResult(
                True, purge.entry_count, None, None, purge.last_hash,
                purged_at=purge.purged_at)
        result.append((purge, verdict))
    return result
