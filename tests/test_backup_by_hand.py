"""The README's restore by hand, without the app: Debian's ``age -d`` decrypts what the app
wrote, ``tar`` unpacks it, and the dump opens (``pg_restore`` into a new database, or the
SQLite file as it is) with the records in it."""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess

import psycopg2
import pytest
from psycopg2 import sql

from tests.backup_world import TITLE, BackupWorld, make_world, report_blob
from tests.conftest import PG_URL


@pytest.fixture
def world(make_app, backend, tmp_path, password_hash) -> BackupWorld:
    return make_world(make_app, backend, tmp_path, password_hash)


def test_age_tar_and_pg_restore_by_hand(world, backend, tmp_path):
    from sqlalchemy import make_url

    from tenants import pg

    assert shutil.which("age"), "Debian's age is needed (.ci/run installs it)"
    assert world.run("backup", "run", "acme").exit_code == 0
    [archive] = world.archives(world.media[0])
    plain, out = tmp_path / "backup.tar", tmp_path / "backup"
    subprocess.run(["age", "-d", "-i", str(world.identity_file), "-o", str(plain),
                    str(archive)], check=True)
    out.mkdir()
    subprocess.run(["tar", "-xf", str(plain), "-C", str(out)], check=True)
    assert (out / "files" / report_blob()).read_text() == f"report about {TITLE}\n"
    if backend == "sqlite":
        conn = sqlite3.connect(out / "database.sqlite3")
        titles = [row[0] for row in conn.execute("SELECT title FROM nonconformities")]
        conn.close()
    else:
        name = f"{world.settings.pg_name_prefix}byhand_{secrets.token_hex(4)}"
        url = make_url(PG_URL)
        env = {**os.environ, "PGHOST": url.host or "", "PGPORT": str(url.port or 5432),
               "PGUSER": url.username or "postgres"}
        if url.password:
            env["PGPASSWORD"] = url.password
        subprocess.run(["createdb", "--template=template0", "--strategy=wal_log", name],
                       check=True, env=env)
        try:
            subprocess.run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
                            f"--dbname={name}", str(out / "database.pgdump")],
                           check=True, env=env)
            conn = psycopg2.connect(pg.libpq_dsn(PG_URL, name))
            with conn.cursor() as cur:
                cur.execute("SELECT title FROM nonconformities")
                titles = [row[0] for row in cur.fetchall()]
            conn.close()
        finally:
            with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)))
    assert TITLE in titles
