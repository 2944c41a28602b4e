"""The ``notifications`` job: in every active tenant, queue the due-soon, overdue and digest
mails that are due today (each under a key naming its user, object and date or week, so a
second run queues nothing), then send what waits (new ones, failed ones with attempts left)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import select

from qalitel.notifications import compose, delivery, timing
from qalitel.notifications.models import Kind
from qalitel.records.models import ACTION_CLOSED, Action
from qalitel.transaction import unit_of_work
from qalitel.users.models import TOMBSTONE_DOMAIN, User
from tenants.context import tdb, tenant_context
from tenants.engines import TenantInfo
from tenants.registry import TenantStatus

log = logging.getLogger(__name__)


def _active_users() -> dict[int, User]:
    users = tdb.execute(select(User).where(
        User.suspended_at.is_(None), User.email.not_like(f"%@{TOMBSTONE_DOMAIN}"))).scalars()
    return {u.id: u for u in users}


def queue_due(today: date) -> int:
    """Queue the current tenant's due-soon, overdue and digest mails of ``today``."""
    tenant = timing.tenant_settings()
    users = _active_users()
    queued = 0
    actions = tdb.execute(select(Action).where(
        Action.status.notin_(ACTION_CLOSED), Action.due_date.is_not(None),
        Action.owner_id.in_(list(users))).order_by(Action.id)).scalars()
    for action in actions:
        owner, due = users[action.owner_id], action.due_date
        left = (due - today).days
        if left < 0:
            kind = Kind.OVERDUE
        elif left <= timing.due_soon_days(owner.id, tenant):
            kind = Kind.DUE_SOON
        else:
            continue
        if not timing.wanted(kind, owner.id, tenant) or not delivery.visible(owner, action):
            continue
        key = f"{kind.value}:{owner.id}:action:{action.id}:{due.isoformat()}"
        queued += delivery.queue(kind, owner.id, key, action) is not None
    if today.weekday() == tenant.digest_weekday:
        week = timing.week_of(today)
        for user in users.values():
            if timing.wanted(Kind.DIGEST, user.id, tenant) and compose.digest_of(user, today):
                key = f"digest:{user.id}:{week}"
                queued += delivery.queue(Kind.DIGEST, user.id, key) is not None
    return queued


def run_notifications(tenants: Iterable[Any]) -> tuple[dict[str, int], list[str]]:
    """Queue and send in each active tenant: totals by outcome, and what failed."""
    totals: Counter[str] = Counter()
    failures: list[str] = []
    for tenant in tenants:
        if tenant.status != TenantStatus.ACTIVE:
            continue
        try:
            with tenant_context(TenantInfo.from_row(tenant)):
                with unit_of_work():
                    totals["queued"] += queue_due(timing.today())
                outcomes = delivery.deliver(delivery.waiting_ids())
                totals.update(outcomes)
        except Exception as exc:  # noqa: BLE001 - reported by the job, the others go on
            log.exception("notifications of %s not run", tenant.slug)
            failures.append(f"{tenant.slug}: {exc}"[:300])
        if outcomes_error := totals.pop("error", 0):
            failures.append(f"{tenant.slug}: {outcomes_error} notification(s) hit an error")
    return dict(totals), failures
