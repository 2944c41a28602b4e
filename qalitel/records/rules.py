"""The tenant's workflow rules as stored (:class:`~qalitel.records.models.WorkflowRule`):
for each move, the roles allowed to make it. :mod:`qalitel.records.visibility` applies them;
:mod:`qalitel.records.service.workflow` changes them."""

from __future__ import annotations

from sqlalchemy import select

from qalitel.records.models import DEFAULT_RULES, WORKFLOW_STEPS, WorkflowRule
from tenants.context import tdb

Rules = dict[str, frozenset[str]]


def workflow_rules() -> Rules:
    """Roles allowed per move; a move the tenant never set follows :data:`DEFAULT_RULES`."""
    stored: dict[str, set[str]] = {}
    for step, role in tdb.execute(select(WorkflowRule.to_status, WorkflowRule.allowed)).all():
        stored.setdefault(step, set()).add(role)
    return {step: frozenset(stored.get(step) or DEFAULT_RULES[step]) for step in WORKFLOW_STEPS}
