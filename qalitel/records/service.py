"""Writes on quality records."""

from __future__ import annotations

from sqlalchemy import func, select

from qalitel.records.models import NonConformity
from qalitel.users.models import User
from tenants.context import tdb


def next_number() -> int:
    return (tdb.execute(select(func.max(NonConformity.number))).scalar() or 0) + 1


def create_nonconformity(author: User, title: str, description: str = "") -> NonConformity:
    record = NonConformity(number=next_number(), title=title.strip(),
                           description=description.strip(), detected_by_id=author.id)
    tdb.add(record)
    tdb.commit()
    return record
