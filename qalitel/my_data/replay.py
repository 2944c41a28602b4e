"""Replaying the erasure ledger on a restored tenant database (registered with
:mod:`backups.replay` by :func:`qalitel.tenancy.register`): a backup taken before an
erasure never brings the person back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.db import db
from qalitel.my_data.erasure import erase, is_tombstone
from qalitel.my_data.ledger import Erasure
from qalitel.transaction import unit_of_work
from qalitel.users.models import User
from tenants.context import tdb, tenant_context
from tenants.engines import TenantInfo


def replay_erasures(info: TenantInfo, engine: Any, uids: tuple[str, ...]) -> int:
    """Erase again, under their recorded pseudonyms, the users the ledger names for
    ``uids``; returns how many rows were erased again (already erased ones are skipped)."""
    entries = db.session.execute(select(Erasure).where(Erasure.tenant_uid.in_(uids))
                                 .order_by(Erasure.id)).scalars().all()
    if not entries:
        return 0
    done = 0
    with tenant_context(info, engine), unit_of_work():
        for entry in entries:
            user = tdb.get(User, entry.tenant_user_id)
            if user is not None and not is_tombstone(user):
                erase(user, entry.pseudonym)
                done += 1
    return done
