"""What the app hands the tenancy core (``tenants.hooks``): its two migration lineages and a
new tenant's first rows. :func:`register` runs when ``qalitel`` is imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tenants import hooks

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LINEAGES = (
    hooks.Lineage("platform", str(MIGRATIONS / "platform"), "qalitel.platform_models"),
    hooks.Lineage("tenant", str(MIGRATIONS / "tenant"), "qalitel.tenant_models"),
)


def first_admin_rows(admin: hooks.FirstAdmin) -> list[hooks.Row]:
    """The first client admin's row, its password hashed here unless a hash was given."""
    from qalitel.users.models import Profile, User
    from qalitel.users.service import hash_password

    values: dict[str, Any] = {
        "email": admin.email, "name": admin.name, "profile": Profile.ADMIN,
        "password_hash": admin.password_hash or hash_password(admin.password)}
    return [(User.__table__, values)]


def purge_access_log(_settings: Any, tenant: Any) -> None:
    """Delete a closed tenant's maintenance access log with it (the p0004 triggers allow it
    for a closed tenant only)."""
    from core.db import db
    from maintenance.models import AccessLogEntry, AccessLogHead

    for model in (AccessLogEntry, AccessLogHead):
        db.session.execute(model.__table__.delete().where(model.tenant_id == tenant.id))


def register() -> None:
    for lineage in LINEAGES:
        hooks.register_lineage(lineage)
    hooks.provide_first_rows(first_admin_rows)
    hooks.on_before_destroy(purge_access_log)
