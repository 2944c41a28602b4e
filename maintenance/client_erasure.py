"""What a client user's erasure changes in the maintenance records: the decisions and
revocations a client admin signed keep the pseudonym, not the person (the access log itself
is append-only and keeps what the privacy page says)."""

from __future__ import annotations

from sqlalchemy import func, update

from core.db import db
from maintenance.models import Grant, MaintenanceRequest


def pseudonymise_client_admin(tenant_id: int, email: str, name: str, email_as: str) -> int:
    """After a client admin's erasure: the decisions (requests) and revocations (grants)
    they signed in ``tenant_id`` under ``email`` now carry ``name`` and ``email_as``
    instead (flushes the platform session, the caller commits); returns the rows changed."""
    changed = 0
    for model, name_col, email_col in (
            (MaintenanceRequest, MaintenanceRequest.decided_by_name,
             MaintenanceRequest.decided_by_email),
            (Grant, Grant.revoked_by_name, Grant.revoked_by_email)):
        result = db.session.execute(
            update(model).where(model.tenant_id == tenant_id,
                                func.lower(email_col) == email.lower())
            .values({name_col.key: name, email_col.key: email_as})
            .execution_options(synchronize_session=False))
        changed += result.rowcount or 0
    db.session.flush()
    return changed
