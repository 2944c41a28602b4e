"""Alembic plumbing: one lineage for the platform, one for every tenant database.

There is no ``alembic.ini``: a runner opens the connection (inside a transaction) and hands it
to ``env.py`` through ``config.attributes["connection"]``; ``env.py`` runs inside that
transaction, so the caller's commit or rollback decides for the whole upgrade. Where each
lineage's scripts and models are is registered by the app (``tenants.hooks.Lineage``).
"""

from __future__ import annotations

import importlib
from functools import cache

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, event

from core.db import PlatformBase, TenantBase
from tenants.hooks import KINDS as KINDS
from tenants.hooks import lineage


class ForeignKeyViolationError(RuntimeError):
    """A migration left rows whose foreign keys point nowhere (SQLite checks at the end)."""


def metadata_for(kind: str) -> MetaData:
    """The complete metadata of a lineage (its models module imported first)."""
    importlib.import_module(lineage(kind).models)
    return PlatformBase.metadata if kind == "platform" else TenantBase.metadata


def alembic_config(kind: str, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", lineage(kind).script_location)
    config.attributes["connection"] = connection
    config.attributes["target_metadata"] = metadata_for(kind)
    return config


def script_directory(kind: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(kind))


def knows(kind: str, revision: str) -> bool:
    """Whether ``revision`` is one of this code's revisions of the lineage (an archive of a
    newer schema, or of another code base, names one it does not know)."""
    try:
        return script_directory(kind).get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown or malformed id
        return False


@cache
def head(kind: str) -> str:
    """The single head revision of a lineage (computed once per process)."""
    heads = script_directory(kind).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"{kind} lineage must have exactly one head, has {heads}")
    return heads[0]


def prepare_engine(engine: Engine) -> Engine:
    """Make a (new, not yet connected) engine fit for running migrations.

    Nothing to do on PostgreSQL, whose DDL is transactional. On SQLite two things:

    * the ``sqlite3`` module commits before every DDL statement, so a failed upgrade would
      leave half its tables behind and the retry would trip over them; here the driver's
      own transaction handling is off and SQLAlchemy's ``begin`` emits ``BEGIN IMMEDIATE``
      (one writer at a time, the whole upgrade atomic);
    * foreign keys are not enforced during the upgrade: Alembic's batch mode rebuilds a table
      by copying it and dropping the original, and with enforcement on that ``DROP`` fires
      the ``ON DELETE`` actions of every row referring to it (cascading deletes, nulled
      references). :func:`upgrade` checks every key before the transaction commits instead.
    """
    if engine.dialect.name != "sqlite":
        return engine

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys=OFF")

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def check_foreign_keys(connection: Connection) -> None:
    """On SQLite, raise if any row's foreign key points nowhere (no-op elsewhere)."""
    if connection.dialect.name != "sqlite":
        return
    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if rows:
        shown = ", ".join(f"{table} row {rowid} -> {parent}"
                          for table, rowid, parent, _fk in rows[:5])
        raise ForeignKeyViolationError(f"{len(rows)} broken foreign key(s): {shown}")


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, kind: str, target: str = "head") -> str | None:
    """Upgrade the database behind ``connection``; returns the revision it is at after."""
    command.upgrade(alembic_config(kind, connection), target)
    check_foreign_keys(connection)
    return current_revision(connection)


def downgrade(connection: Connection, kind: str, target: str) -> str | None:
    """Downgrade the database behind ``connection`` (tests, and repairs by hand)."""
    command.downgrade(alembic_config(kind, connection), target)
    check_foreign_keys(connection)
    return current_revision(connection)


def run_environment() -> None:
    """Body of both lineages' ``env.py``: configure Alembic on the connection the runner
    handed over. There is no ``alembic.ini`` and no URL on purpose: tenant databases are
    reached only through ``qalitel tenants migrate`` (as each tenant's own role), the platform
    database through ``qalitel init``; the connection arrives inside a transaction the runner
    commits."""
    from alembic import context

    config = context.config
    connection = config.attributes.get("connection")
    target_metadata = config.attributes.get("target_metadata")
    if connection is None or target_metadata is None:
        raise RuntimeError("this Alembic environment runs only from tenants.migrations, which "
                           "hands it a connection: use `qalitel tenants migrate` or "
                           "`qalitel init`")
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True, compare_type=True, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()
