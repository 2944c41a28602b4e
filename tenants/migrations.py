"""Alembic plumbing: one lineage for the platform, one for every tenant database."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData

MIGRATIONS = Path(__file__).resolve().parent.parent / "qalitel" / "migrations"
KINDS = ("platform", "tenant")


def metadata_for(kind: str) -> MetaData:
    if kind == "platform":
        import qalitel.platform_models as models
    elif kind == "tenant":
        import qalitel.tenant_models as models  # type: ignore[no-redef]
    else:
        raise ValueError(kind)
    return models.PlatformBase.metadata if kind == "platform" else models.TenantBase.metadata


def alembic_config(kind: str, connection: Connection | None = None) -> Config:
    if kind not in KINDS:
        raise ValueError(kind)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS / kind))
    config.attributes["connection"] = connection
    config.attributes["target_metadata"] = metadata_for(kind)
    return config


@cache
def head(kind: str) -> str:
    """The single head revision of a lineage (computed once per process)."""
    script = ScriptDirectory.from_config(alembic_config(kind))
    heads = script.get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"{kind} lineage must have exactly one head, has {heads}")
    return heads[0]


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, kind: str, target: str = "head") -> str | None:
    """Upgrade the database behind ``connection``; returns the revision it is at after."""
    command.upgrade(alembic_config(kind, connection), target)
    return current_revision(connection)
