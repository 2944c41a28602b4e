"""The demo tenant of the embedded default (``make run``)."""

from __future__ import annotations

from sqlalchemy import select

from core.config import Settings
from core.db import db
from tenants.registry import Backend, Tenant

DEMO_SLUG = "demo"


def ensure_demo(settings: Settings) -> list[str]:
    """Create the demo tenant with a client admin and a client user, once."""
    from qalitel.transaction import unit_of_work
    from qalitel.users.models import Profile
    from qalitel.users.service import create_user
    from tenants.context import tenant_context
    from tenants.engines import TenantInfo
    from tenants.provisioning import create_tenant, generate_password
    from tenants.service import init_platform

    init_platform()
    if db.session.execute(select(Tenant).where(Tenant.slug == DEMO_SLUG)).scalar_one_or_none():
        return ["demo tenant exists; its accounts were printed when it was created"]
    result = create_tenant(settings, DEMO_SLUG, "Demo Industries", "admin@demo.example",
                           admin_name="Alice Admin", backend=Backend.SQLITE.value)
    user_password = generate_password()
    with tenant_context(TenantInfo.from_row(result.tenant)), unit_of_work():
        create_user("user@demo.example", "Ulysse User", user_password, Profile.USER)
    return [
        "demo tenant created at /t/demo/ — these passwords are shown once:",
        f"  client admin  admin@demo.example  {result.admin_password}",
        f"  client user   user@demo.example   {user_password}",
    ]
