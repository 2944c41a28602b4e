"""Retention of the login history: sign-ins older than ``QALITEL_LOGIN_HISTORY_DAYS`` are
deleted from every live tenant (the ``retention`` job of :mod:`qalitel.jobs`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from core import clock
from core.config import Settings
from qalitel.my_data.models import LoginEvent
from qalitel.transaction import unit_of_work
from tenants.context import tdb, tenant_context
from tenants.engines import TenantInfo

log = logging.getLogger(__name__)


def prune_login_history(settings: Settings, tenants: Iterable[Any]
                        ) -> tuple[dict[str, int], list[str]]:
    """Delete each tenant's sign-ins older than the setting: how many went, by slug, and
    what failed. One transaction per tenant: a tenant that fails leaves the others done."""
    cutoff = clock.now() - timedelta(days=settings.login_history_days)
    removed: dict[str, int] = {}
    failures: list[str] = []
    for tenant in tenants:
        try:
            with tenant_context(TenantInfo.from_row(tenant)), unit_of_work():
                result = tdb.execute(delete(LoginEvent).where(LoginEvent.at < cutoff)
                                     .execution_options(synchronize_session=False))
                removed[tenant.slug] = result.rowcount or 0
        except Exception as exc:  # noqa: BLE001 - reported by the job, the others go on
            log.exception("login history of %s not pruned", tenant.slug)
            failures.append(f"{tenant.slug}: {exc}")
    return removed, failures
