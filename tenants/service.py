"""Operations on the registry: listing, suspending, resuming, the platform schema."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from core.db import db
from tenants.registry import LIVE_STATUSES, Tenant, TenantStatus, validate_slug


class TenantNotFoundError(LookupError):
    pass


def init_platform() -> str | None:
    """Create or upgrade the platform database to head; returns its revision."""
    from tenants import migrations  # Alembic: imported by the one command that needs it

    with db.engine.begin() as conn:
        return migrations.upgrade(conn, "platform")


def get_tenant(slug: str) -> Tenant:
    validate_slug(slug)
    tenant = db.session.execute(select(Tenant).where(Tenant.slug == slug)).scalar_one_or_none()
    if tenant is None:
        raise TenantNotFoundError(f"no tenant {slug!r}")
    return tenant


def list_tenants() -> list[Tenant]:
    return list(db.session.execute(select(Tenant).order_by(Tenant.slug)).scalars())


def live_tenants() -> list[Tenant]:
    """Every active or suspended tenant (:data:`LIVE_STATUSES`), by slug."""
    return list(db.session.execute(select(Tenant).where(Tenant.status.in_(LIVE_STATUSES))
                                   .order_by(Tenant.slug)).scalars())


def set_status(slug: str, status: TenantStatus) -> Tenant:
    tenant = get_tenant(slug)
    if tenant.status in (TenantStatus.PROVISIONING, TenantStatus.CLOSED):
        raise ValueError(f"tenant {slug!r} is {tenant.status.value}")
    tenant.status = status
    db.session.commit()
    current_app.extensions["qalitel_engines"].invalidate(tenant.uid)
    return tenant
