"""What the app hands the layers below: to the tenancy core (``tenants.hooks``) its two
migration lineages, a new tenant's first rows and the removal of a destroyed tenant's
files; to maintenance the log purge at destroy
time and how to list a tenant's admins; to backups the erasure ledger, replayed on restore.
:func:`register` runs when ``qalitel`` is imported."""

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


def active_admins(session: Any) -> list[tuple[str, str, str | None]]:
    """A tenant's active administrators (name, e-mail, language of their last sign-in): whom
    maintenance notifies, in their language."""
    from sqlalchemy import select

    from qalitel.users.models import Profile, User

    return [(name, email, locale) for name, email, locale in session.execute(
        select(User.name, User.email, User.locale).where(User.profile == Profile.ADMIN,
                                            User.suspended_at.is_(None)).order_by(User.id))]


def remove_files(settings: Any, tenant: Any) -> None:
    """A destroyed tenant's attached files go with its database."""
    from core.filestore import remove_tenant_files

    remove_tenant_files(settings, tenant.uid)


def register() -> None:
    for lineage in LINEAGES:
        hooks.register_lineage(lineage)
    hooks.provide_first_rows(first_admin_rows)
    # Maintenance's part: the access log's recorded purge at destroy time (every app, the
    # page-less one of commands included) and whom to notify of a request.
    from maintenance import notify, purge

    purge.register()
    notify.on_list_admins(active_admins)
    hooks.on_before_destroy(remove_files)  # after the purge: a refused purge keeps the files
    from backups import replay
    from qalitel.my_data.replay import replay_erasures

    replay.on_restore(replay_erasures)  # a restored backup never brings an erased person back
