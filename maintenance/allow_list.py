"""What a maintenance grant may touch in a tenant database: an allow-list, nothing else.

A table absent here is invisible through the door; a column absent from ``read`` is never
selected; only the ``write`` columns of a read-write grant can be changed, and no row is ever
inserted or deleted. Authentication and identity data stay out of reach: users' password
hashes and session tokens are not even read; their e-mail, profile (role) and suspension are
read-only; ``tenant_identity`` is read-only (the door checks it); ``alembic_version`` is out.
Columns that decide who sees what (folders, clearances, shares, assignees, groups) are
read-only too. The same list is enforced three times: by the PostgreSQL grant role's
privileges (:mod:`maintenance.pg_roles`), by the SQLite authorizer
(:mod:`maintenance.sqlite_door`) and by the console, which offers nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Column names that hold credentials: masked wherever a value could be shown or logged.
SENSITIVE_RE = re.compile(r"password|token|secret|totp|otp_|_otp", re.IGNORECASE)
MASK = "••••••"


@dataclass(frozen=True)
class TableRule:
    read: frozenset[str]
    write: frozenset[str] = frozenset()


def _rule(read: str, write: str = "") -> TableRule:
    return TableRule(frozenset(read.split()), frozenset(write.split()))


RULES: dict[str, TableRule] = {
    "tenant_identity": _rule("id slug tenant_uid created_at"),
    "users": _rule("id name email profile suspended_at last_login_at created_at updated_at",
                   write="name"),
    "groups": _rule("id name created_at"),
    "user_groups": _rule("user_id group_id"),
    "folders": _rule("id name confidential created_by_id created_at"),
    "folder_clearances": _rule("id folder_id user_id group_id granted_by_id granted_at"),
    "nonconformities": _rule(
        "id number title description status detected_on detected_by_id origin severity "
        "folder_id cause_analysis assignee_id created_by_id created_at updated_at",
        write="title description status detected_on origin severity cause_analysis"),
    "nonconformity_status_changes": _rule(
        "id record_id from_status to_status changed_by_id changed_at comment"),
    "nonconformity_shares": _rule("record_id user_id shared_by_id shared_at"),
    "nonconformity_history": _rule("id record_id user_id changed_at field old_value new_value"),
    "actions": _rule(
        "id record_id kind title description owner_id due_date status completed_at "
        "effectiveness_checked_by_id effectiveness_checked_at effective effectiveness_comment "
        "created_by_id created_at updated_at",
        write="kind title description due_date status completed_at effective "
              "effectiveness_comment"),
}

for _name, _table in RULES.items():
    assert _table.write <= _table.read, f"{_name}: a written column must be readable"
    assert not any(SENSITIVE_RE.search(c) for c in _table.read), f"{_name}: credential read"


def readable(table: str, column: str) -> bool:
    rule = RULES.get(table)
    return rule is not None and column in rule.read


def writable(table: str, column: str) -> bool:
    rule = RULES.get(table)
    return rule is not None and column in rule.write


def masked(column: str, value: object) -> object:
    """``value`` as the access log and the console may show it."""
    return MASK if value is not None and SENSITIVE_RE.search(column) else value
