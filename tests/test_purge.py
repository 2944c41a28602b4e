"""Destroying a tenant purges its access log too, and only a closed tenant's log can go."""

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from core.db import db
from maintenance import audit
from maintenance.models import AccessLogEntry, AccessLogHead
from tenants.provisioning import destroy_tenant
from tenants.registry import Tenant
from tests.conftest import provision


def _count(model, tenant_id: int) -> int:
    return db.session.execute(
        select(func.count()).select_from(model).where(model.tenant_id == tenant_id)).scalar()


def test_destroy_purges_only_that_tenants_log(platform_app, password_hash):
    provision(platform_app, "alpha", password_hash, records=0)
    provision(platform_app, "bravo", password_hash, records=0)
    with platform_app.app_context():
        alpha = db.session.execute(select(Tenant).filter_by(slug="alpha")).scalar_one()
        bravo = db.session.execute(select(Tenant).filter_by(slug="bravo")).scalar_one()
        alpha_id, bravo_id = alpha.id, bravo.id
        for tenant_id in (alpha_id, alpha_id, bravo_id):
            audit.append(tenant_id, "request", actor_kind="staff", actor_name="Eve Engineer",
                         actor_email="eve@scoqi.example")
        with pytest.raises(DBAPIError):
            db.session.execute(text("DELETE FROM access_log WHERE tenant_id = :t"),
                               {"t": bravo_id})
            db.session.flush()
        db.session.rollback()

        destroy_tenant(platform_app.extensions["qalitel_settings"], alpha)

        assert _count(AccessLogEntry, alpha_id) == 0
        assert _count(AccessLogHead, alpha_id) == 0
        assert db.session.get(Tenant, alpha_id) is None
        assert _count(AccessLogEntry, bravo_id) == 1
        assert audit.verify(bravo_id).ok
        with pytest.raises(DBAPIError):
            db.session.execute(text("DELETE FROM access_log WHERE tenant_id = :t"),
                               {"t": bravo_id})
        db.session.rollback()
        with pytest.raises(DBAPIError):
            db.session.execute(text("UPDATE access_log SET actor_name = 'x' WHERE tenant_id = :t"),
                               {"t": bravo_id})
        db.session.rollback()
