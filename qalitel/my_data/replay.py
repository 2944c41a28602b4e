"""Replaying the erasure ledger on a restored tenant database (registered with
:mod:`backups.replay` by :func:`qalitel.tenancy.register`): a backup taken before an
erasure never brings the person back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.db import db
from qalitel.my_data.erasure import erase, is_tombstone
from qalitel.my_data.ledger import Erasure, person_keys
from qalitel.transaction import unit_of_work
from qalitel.users.models import User
from tenants.context import tdb, tenant_context
from tenants.engines import TenantInfo


def _matches(entry: Erasure, user: User) -> bool:
    """Whether ledger ``entry`` names ``user``: by the keyed hash of their never-reused uid
    (rows of the ledger from before that key: by id alone)."""
    if entry.person_key is None:
        return True
    return entry.person_key in person_keys(entry.tenant_uid, user.id, user.uid)


def replay_erasures(info: TenantInfo, engine: Any, uids: tuple[str, ...]) -> int:
    """Erase again, under their recorded pseudonyms, the users the ledger names for
    ``uids``; returns how many rows were erased again (already erased ones are skipped, and
    a user who only reuses an erased person's id is left alone)."""
    entries = db.session.execute(select(Erasure).where(Erasure.tenant_uid.in_(uids))
                                 .order_by(Erasure.id)).scalars().all()
    if not entries:
        return 0
    done = 0
    with tenant_context(info, engine), unit_of_work():
        for entry in entries:
            user = tdb.get(User, entry.tenant_user_id)
            if user is not None and not is_tombstone(user) and _matches(entry, user):
                erase(user, entry.pseudonym)
                done += 1
    return done
