"""The ``notifications`` job: in every active tenant, queue the due-soon, overdue and digest
mails that are due today (each under a key naming its user, object and date or week, so a
second run queues nothing), then send what waits (new ones, failed ones with attempts left)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from sqlalchemy import select

from qalitel.notifications import compose, delivery, timing
from qalitel.notifications.models import (
    Kind,
    Notification,
    NotificationPreference,
    NotificationSettings,
)
from qalitel.records.models import ACTION_CLOSED, Action
from qalitel.transaction import unit_of_work
from qalitel.users.models import TOMBSTONE_DOMAIN, User
from tenants.context import tdb, tenant_context
from tenants.engines import TenantInfo
from tenants.registry import TenantStatus

log = logging.getLogger(__name__)

KEY_CHUNK = 500


def _active_users() -> dict[int, User]:
    users = tdb.execute(select(User).where(
        User.suspended_at.is_(None), User.email.not_like(f"%@{TOMBSTONE_DOMAIN}"))).scalars()
    return {u.id: u for u in users}


def _known(keys: list[str]) -> set[str]:
    """Which of ``keys`` were queued already (one query per chunk, not one per key)."""
    found: set[str] = set()
    for start in range(0, len(keys), KEY_CHUNK):
        found.update(tdb.execute(select(Notification.key).where(
            Notification.key.in_(keys[start:start + KEY_CHUNK]))).scalars())
    return found


def _candidates(today: date, users: dict[int, User], tenant: NotificationSettings,
                prefs: dict[int, NotificationPreference]
                ) -> Iterator[tuple[Kind, User, Action | None, str]]:
    """(kind, recipient, action, key) of every mail due today, queued or not."""
    actions = tdb.execute(select(Action).where(
        Action.status.notin_(ACTION_CLOSED), Action.due_date.is_not(None),
        Action.owner_id.in_(list(users))).order_by(Action.id)).scalars()
    for action in actions:
        owner, due = users[action.owner_id], action.due_date
        preference = prefs.get(owner.id) or timing.default_preference(owner.id)
        left = (due - today).days
        if left < 0:
            kind = Kind.OVERDUE
        elif left <= timing.due_soon_days(owner.id, tenant, preference):
            kind = Kind.DUE_SOON
        else:
            continue
        if timing.wanted(kind, owner.id, tenant, preference):
            yield kind, owner, action, f"{kind.value}:{owner.id}:action:{action.id}:{due}"
    if today.weekday() == tenant.digest_weekday:
        week = timing.week_of(today)
        for user in users.values():
            preference = prefs.get(user.id) or timing.default_preference(user.id)
            if timing.wanted(Kind.DIGEST, user.id, tenant, preference):
                yield Kind.DIGEST, user, None, f"digest:{user.id}:{week}"


def queue_due(today: date) -> int:
    """Queue the current tenant's due-soon, overdue and digest mails of ``today``; those
    queued before (same key) are left alone."""
    tenant, users, prefs = timing.tenant_settings(), _active_users(), timing.all_preferences()
    candidates = list(_candidates(today, users, tenant, prefs))
    known = _known([key for *_, key in candidates])
    queued = 0
    for kind, user, action, key in candidates:
        if key in known:
            continue
        if action is not None and not delivery.visible(user, action):
            continue
        if action is None and not compose.digest_of(user, today):
            # not sent, but remembered: the next runs of the day do not compute it again
            delivery.skip(kind, user.id, key, "empty")
            continue
        queued += delivery.queue(kind, user.id, key, action) is not None
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
