"""Database URLs as operators write them (``postgresql://``, ``postgres://``) reach a real
PostgreSQL platform database, through the ``qalitel`` command and through ``create_app``."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, make_url, select

from tests.conftest import PASSWORD, PG_PREFIX, PG_TEMPLATE, PG_URL, require_postgres

SCHEMES = ("postgresql", "postgres")
QALITEL = str(Path(sys.executable).parent / "qalitel")


@pytest.fixture
def scratch_database() -> Iterator[str]:
    """The name of an empty PostgreSQL database, dropped after."""
    require_postgres()
    from tenants import pg

    name = f"{PG_PREFIX}plain_{secrets.token_hex(4)}"
    with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
        cur.execute(pg.sql.SQL("CREATE DATABASE {}").format(pg.sql.Identifier(name)))
    try:
        yield name
    finally:
        with pg.admin_connection(PG_URL) as conn:
            pg.drop_database(conn, name)


def plain_url(scheme: str, database: str) -> str:
    """The URL of ``database`` written the operator's way: no driver named."""
    url = make_url(PG_URL).set(database=database)
    return f"{scheme}://" + url.render_as_string(hide_password=False).split("://", 1)[1]


def qalitel(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([QALITEL, *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_command_works_on_a_plain_platform_url(tmp_path, scratch_database, scheme):
    env = {key: value for key, value in os.environ.items() if not key.startswith("QALITEL_")}
    env.update(QALITEL_INSTANCE_DIR=str(tmp_path / "instance"),
               QALITEL_DATABASE_URL=plain_url(scheme, scratch_database),
               QALITEL_PG_NAME_PREFIX=PG_PREFIX, QALITEL_TEMPLATE_DATABASE=PG_TEMPLATE)
    init = qalitel(env, "init")
    assert init.returncode == 0, init.stderr
    assert "platform database at revision" in init.stdout
    created = qalitel(env, "tenants", "create", "acme", "--name", "Acme",
                      "--admin-email", "admin@acme.example", "--admin-password", PASSWORD)
    assert created.returncode == 0, created.stderr
    listed = qalitel(env, "tenants", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(row["slug"], row["status"]) for row in json.loads(listed.stdout)] == [
        ("acme", "active")]


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", SCHEMES)
def test_create_app_works_on_a_plain_platform_url(tmp_path, scratch_database, scheme):
    from core.db import db
    from qalitel import create_app
    from tenants.registry import Tenant
    from tenants.service import init_platform

    app = create_app({"instance_dir": tmp_path / "instance", "external_url": "http://localhost",
                      "database_url": plain_url(scheme, scratch_database)})
    try:
        with app.app_context():
            assert db.engine.dialect.driver == "psycopg2"
            assert db.engine.url.database == scratch_database
            assert init_platform() is not None
            assert db.session.execute(select(func.count()).select_from(Tenant)).scalar() == 0
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", SCHEMES)
def test_servers_add_takes_a_plain_url(make_app, scheme):
    from core.crypto import decrypt
    from core.db import db
    from tenants.registry import DatabaseServer

    require_postgres()
    app = make_app("sqlite")
    url = plain_url(scheme, make_url(PG_URL).database or "postgres")
    runner = app.test_cli_runner()
    added = runner.invoke(args=["servers", "add", "extra", url])
    assert added.exit_code == 0, added.output
    assert "template at" in added.output
    with app.app_context():
        server = db.session.execute(select(DatabaseServer)).scalar_one()
        stored = decrypt(app.extensions["qalitel_settings"].encryption_key, server.url_encrypted)
        assert stored.startswith("postgresql+psycopg2://")
    listed = runner.invoke(args=["servers", "list"])
    assert listed.exit_code == 0 and listed.output.startswith("extra")
    created = runner.invoke(args=["tenants", "create", "--name", "Plain", "--admin-email",
                                  "admin@plain.example", "--admin-password", PASSWORD,
                                  "--server", "extra", "plain"])
    assert created.exit_code == 0, created.output
    assert "created on postgresql" in created.output
