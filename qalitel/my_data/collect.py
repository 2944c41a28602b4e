"""Everything a tenant holds about one person, as ``{section: [row, ...]}``.

Tenant tables are found from the schema, not listed by hand: a row belongs to the person
when one of its foreign keys to ``users.id`` names them (a table added later is therefore
exported without code here changing), or when one of its free-text columns mentions their
name, a former name, or their e-mail address (whole word, case-insensitive, names of at least
three characters: :mod:`qalitel.my_data.mentions`) *and* the person may see that row
(:mod:`qalitel.records.visibility`): a mention never opens a record they cannot read.
Beside the tenant tables: the groups the person is a member of, the records shared with
them, the maintenance accesses of the platform's access log that touched rows about them,
and the preferences the caller read from the person's ``qalitel_prefs`` cookie.
Only the password hash and the session token are withheld
(:data:`WITHHELD`): they are credentials, not information about the person.
"""

from __future__ import annotations

import enum
import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, ForeignKey, Table, false, or_, select, true
from sqlalchemy.orm import Session

from qalitel.my_data.mentions import FREE_TEXT as FREE_TEXT_COLUMNS
from qalitel.my_data.mentions import mentions, needles, pattern, prefilter
from qalitel.records import visibility
from qalitel.records.models import Action, NonConformity, RecordShare
from qalitel.users.models import FormerName, Group, User, UserGroup
from tenants.schema import TenantBase

WITHHELD = {"users": ("password_hash", "session_token")}
SKIPPED_TABLES = ("tenant_identity",)
GROUPS = "groups_of_the_user"
SHARED = "records_shared_with_the_user"
ACCESSES = "maintenance_accesses"
PREFERENCES = "preferences"

Data = dict[str, list[dict[str, Any]]]


def plain(value: Any) -> Any:
    """A JSON-ready value."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value


def _row(table: Table, mapping: Any) -> dict[str, Any]:
    hidden = WITHHELD.get(table.name, ())
    return {c.name: plain(mapping[c.name]) for c in table.columns if c.name not in hidden}


def user_columns(table: Table) -> list[Any]:
    """The columns of ``table`` holding a foreign key to ``users.id``."""
    return [c for c in table.columns
            if any(isinstance(fk, ForeignKey) and fk.column.table.name == "users"
                   for fk in c.foreign_keys)]


def _visible(table: Table, user: User) -> ColumnElement[bool]:
    """``where`` clause on ``table``: the rows ``user`` may read, for mentions (tables not
    listed here: a mention alone never exports a row)."""
    records = select(NonConformity.id).where(visibility.record_visibility(user))
    actions = select(Action.id).where(visibility.action_visibility(user))
    if table.name == "nonconformities":
        return visibility.record_visibility(user)
    if table.name == "actions":
        return visibility.action_visibility(user)
    if table.name == "folders":
        return visibility.folder_visibility(user)
    if table.name in ("nonconformity_status_changes", "nonconformity_history",
                      "nonconformity_analyses"):
        return table.c.record_id.in_(records)
    if table.name == "catalog_entries":
        return true()  # every user is offered the lists
    if table.name == "notifications":
        return or_((table.c.object_type == "record") & table.c.object_id.in_(records),
                   (table.c.object_type == "action") & table.c.object_id.in_(actions))
    if table.name == "action_history":
        return table.c.action_id.in_(actions)
    if table.name == "attachments":
        return or_(table.c.record_id.in_(records), table.c.action_id.in_(actions))
    return false()


def _mentioning(session: Session, table: Table, user: User, regex: re.Pattern[str] | None,
                strings: list[str]) -> list[Any]:
    """The visible rows of ``table`` whose free text mentions the person."""
    columns = FREE_TEXT_COLUMNS.get(table.name)
    if not columns or regex is None:
        return []
    cols = [table.c[c] for c in columns]
    rows = session.execute(select(table).where(_visible(table, user),
                                               prefilter(cols, strings))).mappings()
    return [r for r in rows if any(mentions(r[c], regex) for c in columns)]


def _tenant_rows(session: Session, user: User) -> Data:
    out: Data = {}
    former = list(session.execute(select(FormerName.name).where(
        FormerName.user_id == user.id)).scalars())
    strings = needles([user.name, *former], [user.email])
    regex = pattern(strings)
    for table in TenantBase.metadata.sorted_tables:
        if table.name in SKIPPED_TABLES:
            continue
        key = [c.name for c in table.primary_key.columns]
        if table.name == "users":
            clauses = [table.c.id == user.id]
        else:
            clauses = [c == user.id for c in user_columns(table)]
        found = {tuple(r[k] for k in key): r for r in _mentioning(session, table, user,
                                                                   regex, strings)}
        if clauses:
            found.update({tuple(r[k] for k in key): r for r in session.execute(
                select(table).where(or_(*clauses))).mappings()})
        out[table.name] = [_row(table, found[k]) for k in sorted(found)]
    return out


def _joined(session: Session, user: User) -> Data:
    groups = session.execute(
        select(Group.id, Group.name).join(UserGroup, UserGroup.group_id == Group.id)
        .where(UserGroup.user_id == user.id).order_by(Group.id)).mappings()
    shared = session.execute(
        select(NonConformity.__table__).join(RecordShare,
                                             RecordShare.record_id == NonConformity.id)
        .where(RecordShare.user_id == user.id).order_by(NonConformity.id)).mappings()
    return {GROUPS: [dict(g) for g in groups],
            SHARED: [_row(NonConformity.__table__, r) for r in shared]}


def _accesses(tenant_uid: str | None, data: Data) -> list[dict[str, Any]]:
    """Entries of the tenant's access log whose detail names a table and record exported
    above, or a page of a table with exported rows (it may have shown them)."""
    if tenant_uid is None:
        return []
    from core.db import db
    from maintenance.audit_read import iter_jsonl
    from tenants.registry import Tenant

    tenant_id = db.session.execute(select(Tenant.id).where(Tenant.uid == tenant_uid)).scalar()
    if tenant_id is None:
        return []
    keys = {(table, str(row["id"])) for table, rows in data.items() for row in rows
            if "id" in row}
    tables = {table for table, rows in data.items() if rows}
    found = []
    for line in iter_jsonl(tenant_id):
        entry = json.loads(line)
        detail = entry.get("detail") or {}
        table = detail.get("table")
        if ((table, str(detail.get("record_id"))) in keys
                or (detail.get("what") == "rows" and table in tables)):
            found.append(entry)
    return found


def personal_data(session: Session, user_id: int, prefs: dict[str, Any] | None = None,
                  tenant_uid: str | None = None) -> Data:
    """Every piece of personal data ``session``'s tenant holds about user ``user_id``;
    ``prefs``: their decoded preference cookie; ``tenant_uid``: to read the access log."""
    user = session.get(User, user_id)
    if user is None:
        raise LookupError(f"no user {user_id}")
    data = _tenant_rows(session, user)
    data.update(_joined(session, user))
    data[ACCESSES] = _accesses(tenant_uid, data)
    data[PREFERENCES] = [{key: plain(value) for key, value in (prefs or {}).items()}]
    return data
