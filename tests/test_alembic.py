"""The Alembic lineages: one head each, and `upgrade head` builds exactly what the models say."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.pool import NullPool

from core.config import normalize_database_url
from tenants import migrations, pg
from tests.conftest import PG_PREFIX, PG_URL


@contextmanager
def scratch_engine(backend: str, tmp_path) -> Iterator[Engine]:
    """An empty database of its own (a SQLite file, or a PostgreSQL database dropped after)."""
    if backend == "sqlite":
        engine = migrations.prepare_engine(
            create_engine(f"sqlite:///{tmp_path / 'scratch.sqlite3'}", poolclass=NullPool))
        try:
            yield engine
        finally:
            engine.dispose()
        return
    name = f"{PG_PREFIX}scratch_{secrets.token_hex(4)}"
    with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
        cur.execute(pg.sql.SQL("CREATE DATABASE {}").format(pg.sql.Identifier(name)))
    engine = create_engine(normalize_database_url(pg.libpq_dsn(PG_URL, name)),
                           poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()
        with pg.admin_connection(PG_URL) as conn:
            pg.drop_database(conn, name)


def differences(engine: Engine, kind: str) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, migrations.metadata_for(kind))


def user_tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


@pytest.mark.parametrize("kind", migrations.KINDS)
def test_upgrade_head_on_empty_database_matches_models(backend, kind, tmp_path):
    with scratch_engine(backend, tmp_path) as engine:
        with engine.begin() as conn:
            assert migrations.current_revision(conn) is None
            assert migrations.upgrade(conn, kind) == migrations.head(kind)
        assert differences(engine, kind) == []
        assert user_tables(engine) == set(migrations.metadata_for(kind).tables)


@pytest.mark.parametrize("kind", migrations.KINDS)
def test_each_lineage_is_linear_with_one_head(kind):
    script = migrations.script_directory(kind)
    heads = script.get_heads()
    assert len(heads) == 1, f"{kind} lineage has heads {heads}: merge them"
    assert migrations.head(kind) == heads[0]
    assert len(script.get_bases()) == 1
    revisions = list(script.walk_revisions())
    assert all(not rev.is_merge_point and not rev.is_branch_point for rev in revisions)
    prefix = kind[0]
    assert all(rev.revision.startswith(prefix) for rev in revisions), \
        f"{kind} revision ids start with {prefix!r}"


@pytest.mark.parametrize("kind", migrations.KINDS)
def test_downgrade_to_base_then_upgrade_on_sqlite(kind, tmp_path):
    with scratch_engine("sqlite", tmp_path) as engine:
        with engine.begin() as conn:
            migrations.upgrade(conn, kind)
        with engine.begin() as conn:
            assert migrations.downgrade(conn, kind, "base") is None
        assert user_tables(engine) == set()
        with engine.begin() as conn:
            assert migrations.upgrade(conn, kind) == migrations.head(kind)
        assert differences(engine, kind) == []


def test_tenant_revisions_step_down_and_up_one_at_a_time_on_sqlite(tmp_path):
    """Every single step of the tenant lineage works both ways (what `migrate` replays)."""
    revisions = [rev.revision for rev in migrations.script_directory("tenant").walk_revisions()]
    with scratch_engine("sqlite", tmp_path) as engine:
        with engine.begin() as conn:
            migrations.upgrade(conn, "tenant")
        for older in [*revisions[1:], "base"]:
            with engine.begin() as conn:
                migrations.downgrade(conn, "tenant", "-1")
                assert migrations.current_revision(conn) == (None if older == "base" else older)
        for newer in reversed(revisions):
            with engine.begin() as conn:
                assert migrations.upgrade(conn, "tenant", "+1") == newer
        assert differences(engine, "tenant") == []


def test_failed_upgrade_on_sqlite_leaves_nothing_behind(tmp_path):
    """pysqlite commits before DDL unless told otherwise: a failure must roll back it all."""
    with scratch_engine("sqlite", tmp_path) as engine:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE users (conflicting INTEGER)"))
        with pytest.raises(Exception, match="users"), engine.begin() as conn:
            migrations.upgrade(conn, "tenant")
        assert user_tables(engine) == {"users"}
        with engine.connect() as conn:
            assert migrations.current_revision(conn) is None


def test_sqlite_migrations_check_foreign_keys_before_commit(tmp_path):
    """Keys are not enforced during a SQLite migration (batch rebuilds would fire ON DELETE
    actions); a dangling key is caught before the transaction commits instead."""
    with scratch_engine("sqlite", tmp_path) as engine:
        with engine.begin() as conn:
            migrations.upgrade(conn, "tenant")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO groups (id, name) VALUES (1, 'g')"))
        with pytest.raises(migrations.ForeignKeyViolationError, match="user_groups"), \
                engine.begin() as conn:
            conn.execute(text("INSERT INTO user_groups (user_id, group_id) VALUES (42, 1)"))
            migrations.upgrade(conn, "tenant")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM user_groups")).scalar() == 0


def test_environment_refuses_to_run_without_a_handed_over_connection():
    with pytest.raises(RuntimeError, match="qalitel tenants migrate"):
        command.upgrade(migrations.alembic_config("tenant"), "head")
