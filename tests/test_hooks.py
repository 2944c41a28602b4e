"""The tenancy core imports nothing of the app: the app hands it a new tenant's first rows and
its migration lineages (``tenants.hooks``). Missing or failing hooks fail closed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD

ADMIN = "admin@{slug}.example"


def _settings(app):
    return app.extensions["qalitel_settings"]


def _create(app, slug: str, **kwargs):
    from tenants.provisioning import create_tenant

    return create_tenant(_settings(app), slug, slug.title(), ADMIN.format(slug=slug), PASSWORD,
                         **kwargs)


def _tenant_rows(app, slug: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(email, profile) of every user and the name of every group, read as the tenant."""
    from qalitel.users.models import Group, User
    from tenants.engines import TenantInfo
    from tenants.migrate import migration_engine
    from tenants.service import get_tenant

    engine = migration_engine(TenantInfo.from_row(get_tenant(slug)), _settings(app))
    try:
        with engine.connect() as conn:
            users = [(row.email, row.profile) for row in conn.execute(
                select(User.__table__.c.email, User.__table__.c.profile))]
            groups = list(conn.execute(select(Group.__table__.c.name)).scalars())
    finally:
        engine.dispose()
    return users, groups


def _leftovers(app) -> tuple[list[str], list[str]]:
    from core.db import db
    from tenants.registry import Tenant

    folder = _settings(app).sqlite_tenant_dir
    files = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".template"))
    return list(db.session.execute(select(Tenant.slug)).scalars()), files


def test_the_app_provides_the_first_admin(app, backend, password_hash):
    with app.app_context():
        _create(app, "acme", admin_name="Ada", password_hash=password_hash)
        users, groups = _tenant_rows(app, "acme")
    assert users == [("admin@acme.example", "admin")]
    assert groups == []


def test_first_rows_given_by_the_caller_are_written_as_given(app, backend, password_hash):
    from qalitel.tenancy import first_admin_rows
    from qalitel.users.models import Group

    def rows(admin):
        assert admin.email == "admin@acme.example" and admin.password == PASSWORD
        return [*first_admin_rows(admin), (Group.__table__, {"name": "Quality"})]

    with app.app_context():
        _create(app, "acme", password_hash=password_hash, first_rows=rows)
        users, groups = _tenant_rows(app, "acme")
    assert users == [("admin@acme.example", "admin")]
    assert groups == ["Quality"]


def test_without_a_first_rows_provider_nothing_is_created(app, backend, monkeypatch):
    from tenants import hooks

    monkeypatch.setattr(hooks, "first_rows_providers", [])
    with app.app_context():
        with pytest.raises(hooks.HookMissingError, match="first rows"):
            _create(app, "acme")
        assert _leftovers(app) == ([], [])


def test_a_first_row_the_database_refuses_undoes_everything(app, backend, password_hash):
    from qalitel.tenancy import first_admin_rows
    from tenants.provisioning import ProvisioningError

    def twice(admin):  # the same email twice: the unique index refuses the second
        return first_admin_rows(admin) * 2

    with app.app_context():
        with pytest.raises(ProvisioningError, match="failed"):
            _create(app, "acme", password_hash=password_hash, first_rows=twice)
        assert _leftovers(app) == ([], [])


def test_without_a_registered_lineage_migrations_refuse_clearly(app, monkeypatch):
    from tenants import hooks, migrations

    monkeypatch.setattr(hooks, "lineages", {})
    with pytest.raises(hooks.HookMissingError, match="no tenant migration lineage"):
        migrations.alembic_config("tenant")
    with pytest.raises(ValueError, match="unknown lineage kind"):
        migrations.alembic_config("other")


def test_a_failing_before_destroy_hook_keeps_the_database(app, backend, password_hash,
                                                           monkeypatch):
    from core.db import db
    from tenants import hooks
    from tenants.provisioning import destroy_tenant
    from tenants.registry import TenantStatus
    from tenants.service import get_tenant

    def refuse(_settings, _tenant):
        raise RuntimeError("the access log could not be purged")

    with app.app_context():
        _create(app, "acme", password_hash=password_hash)
        monkeypatch.setattr(hooks, "before_destroy", [*hooks.before_destroy, refuse])
        with pytest.raises(RuntimeError, match="could not be purged"):
            destroy_tenant(_settings(app), get_tenant("acme"))
        db.session.rollback()
        tenant = get_tenant("acme")
        assert tenant.status is TenantStatus.CLOSED
        monkeypatch.setattr(hooks, "before_destroy", [])
        users, _groups = _tenant_rows(app, "acme")  # the database is still there
        assert users == [("admin@acme.example", "admin")]
