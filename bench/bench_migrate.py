"""`qalitel tenants migrate --all` across many tenants: nothing pending, then a few pending.

Builds a throwaway instance (temporary folder; on PostgreSQL a unique name prefix) holding N
real tenant databases at head: on SQLite copies of the template file with their identity row,
on PostgreSQL clones of the template database owned by a login role of their own, objects
handed over and identity row written, as provisioning does (registry rows are bulk-inserted:
this measures migrating, not provisioning). A sample is opened as the tenant's own role and
checked at head. Then it times

* ``migrate --all`` with nothing pending, in process through the CLI runner (median of
  ``--runs``; target ≤ 5 s),
* the same through the real ``qalitel`` process once (interpreter start-up included),
* ``migrate --all`` with ``--pending`` tenants one revision behind (worker processes),

and removes every file, database and role it made.

    .venv/bin/python bench/bench_migrate.py [-n 500] [--backend sqlite|postgresql] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_PG = os.environ.get("QALITEL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_S = 5.0


def cleanup_pg(pg_url: str, prefix: str) -> int:
    """Drop every database and role whose name starts with this run's prefix."""
    from tenants import pg

    return pg.drop_prefixed(pg_url, prefix)


def make_sqlite_tenant(settings, template: Path, slug: str, uid: str) -> dict:
    from tenants.engines import sqlite_path

    path = sqlite_path(settings, f"{slug}.sqlite3")
    shutil.copyfile(template, path)
    conn = sqlite3.connect(path)
    try:
        conn.execute("INSERT INTO tenant_identity (id, slug, tenant_uid) VALUES (1, ?, ?)",
                     (slug, uid))
        conn.commit()
    finally:
        conn.close()
    return {"database_name": path.name}


def make_pg_tenant(settings, url: str, slug: str, uid: str) -> dict:
    from psycopg2 import sql

    from core.crypto import encrypt
    from tenants import pg

    name = f"{settings.pg_name_prefix}{slug}"
    password = secrets.token_urlsafe(24)
    with pg.admin_connection(url) as conn:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s NOINHERIT").format(
                sql.Identifier(name)), (password,))
        with pg.advisory_lock(conn, f"template:{settings.template_database}", shared=True), \
                conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(settings.template_database),
                sql.Identifier(name)))
        with conn.cursor() as cur:
            cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(
                sql.Identifier(name)))
    with pg.admin_connection(url, name) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("REASSIGN OWNED BY {owner} TO {role}; DROP OWNED BY {owner}").format(
            owner=sql.Identifier(pg.TEMPLATE_OWNER), role=sql.Identifier(name)))
        cur.execute("INSERT INTO tenant_identity (id, slug, tenant_uid) VALUES (1, %s, %s)",
                    (slug, uid))
    return {"database_name": name, "role_name": name,
            "role_password_encrypted": encrypt(settings.encryption_key, password)}


def build_tenants(app, backend: str, count: int, pg_url: str) -> float:
    """Create ``count`` tenant databases at head and their registry rows; returns seconds."""
    from sqlalchemy import insert

    from core.db import db
    from tenants import migrations
    from tenants.provisioning import ensure_server, ensure_sqlite_template, migrate_pg_template
    from tenants.registry import Backend, Tenant, TenantStatus

    started = time.perf_counter()
    settings = app.extensions["qalitel_settings"]
    head = migrations.head("tenant")
    with app.app_context():
        template = ensure_sqlite_template(settings)
        server_id = None
        if backend == "postgresql":
            server = ensure_server(settings, "default", pg_url)
            migrate_pg_template(settings, server)
            server_id = server.id
        slugs = [f"bench{i:04d}" for i in range(count)]
        uids = [str(uuid.uuid4()) for _ in slugs]

        def make(pair: tuple[str, str]) -> dict:
            slug, uid = pair
            if backend == "sqlite":
                return make_sqlite_tenant(settings, template, slug, uid)
            return make_pg_tenant(settings, pg_url, slug, uid)

        with ThreadPoolExecutor(max_workers=1 if backend == "sqlite" else 4) as pool:
            made = list(pool.map(make, zip(slugs, uids, strict=True)))
        rows = [{"uid": uid, "slug": slug, "name": f"Bench {slug}",
                 "status": TenantStatus.ACTIVE,
                 "backend": Backend.SQLITE if backend == "sqlite" else Backend.POSTGRESQL,
                 "server_id": server_id, "schema_revision": head, **extra}
                for slug, uid, extra in zip(slugs, uids, made, strict=True)]
        db.session.execute(insert(Tenant), rows)
        db.session.commit()
    return time.perf_counter() - started


def check_sample(app, size: int = 5) -> None:
    """Open a few tenants as their own role: identity row checked, revision at head."""
    from sqlalchemy import select

    from core.db import db
    from tenants import migrations
    from tenants.engines import TenantInfo
    from tenants.migrate import migration_engine
    from tenants.registry import Tenant

    settings = app.extensions["qalitel_settings"]
    with app.app_context():
        tenants = list(db.session.execute(select(Tenant)).scalars())
        for tenant in random.sample(tenants, min(size, len(tenants))):
            engine = migration_engine(TenantInfo.from_row(tenant), settings)
            with engine.connect() as conn:
                revision = migrations.current_revision(conn)
            engine.dispose()
            assert revision == migrations.head("tenant"), (tenant.slug, revision)


def put_behind(app, count: int) -> str:
    """Downgrade ``count`` tenants one revision, as their own role; returns that revision."""
    from sqlalchemy import select

    from core.db import db
    from tenants import migrations
    from tenants.engines import TenantInfo
    from tenants.migrate import migration_engine
    from tenants.registry import Tenant

    settings = app.extensions["qalitel_settings"]
    previous = migrations.script_directory("tenant").get_revision(
        migrations.head("tenant")).down_revision
    with app.app_context():
        tenants = list(db.session.execute(select(Tenant).order_by(Tenant.slug)).scalars())
        for tenant in tenants[:count]:
            engine = migration_engine(TenantInfo.from_row(tenant), settings)
            with engine.begin() as conn:
                migrations.downgrade(conn, "tenant", previous)
            engine.dispose()
            tenant.schema_revision = previous
        db.session.commit()
    return previous


def timed_cli(app, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = app.test_cli_runner().invoke(args=["tenants", "migrate", *args])
    elapsed = time.perf_counter() - started
    if result.exit_code != 0:
        raise RuntimeError(f"migrate failed: {result.output}")
    return elapsed, result.output.splitlines()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--tenants", type=int, default=500)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--runs", type=int, default=7, help="timed runs with nothing pending")
    parser.add_argument("--pending", type=int, default=20,
                        help="tenants put one revision behind for the last timing (0: skip)")
    parser.add_argument("--budget", type=int, default=8,
                        help="QALITEL_MIGRATE_CONNECTION_BUDGET for the runs")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="admin DSN of the PostgreSQL server")
    args = parser.parse_args(argv)
    print("reproduce:", shlex.join([".venv/bin/python", "bench/bench_migrate.py",
                                    *(argv if argv is not None else sys.argv[1:])]))

    from core.db import db
    from qalitel import create_app
    from tenants import migrations
    from tenants.service import init_platform

    tag = secrets.token_hex(3)
    prefix = f"qbm{tag}_"
    folder = Path(tempfile.mkdtemp(prefix="qalitel-bench-migrate-"))
    overrides = {
        "instance_dir": folder / "instance",
        "secret_key": secrets.token_urlsafe(32),
        "pg_name_prefix": prefix,
        "template_database": f"{prefix}template",
        "tenant_server_url": args.pg_url if args.backend == "postgresql" else "",
        "migrate_connection_budget": args.budget,
        "engine_cache_size": 8,
    }
    try:
        app = create_app(overrides)
        with app.app_context():
            init_platform()
        settings = app.extensions["qalitel_settings"]
        head = migrations.head("tenant")
        print(f"backend {args.backend}, {args.tenants} tenants, tenant head {head}, "
              f"connection budget {args.budget}, {os.cpu_count()} CPU(s)")

        built = build_tenants(app, args.backend, args.tenants, args.pg_url)
        check_sample(app)
        print(f"built {args.tenants} tenant databases at head in {built:.1f} s "
              f"({built / max(args.tenants, 1) * 1000:.1f} ms each; sample checked as "
              "tenant roles)")

        timed_cli(app, "--all")  # warm-up: imports, first queries
        runs: list[float] = []
        summary = ""
        for _ in range(args.runs):
            elapsed, summary = timed_cli(app, "--all")
            runs.append(elapsed)
        median = statistics.median(runs)
        verdict = "ok" if median <= TARGET_S else "OVER"
        print(f"migrate --all, nothing pending, in process (CLI runner), {args.runs} runs:")
        print(f"  median {median * 1000:.0f} ms, min {min(runs) * 1000:.0f} ms, "
              f"max {max(runs) * 1000:.0f} ms   target ≤ {TARGET_S:.0f} s: {verdict}")
        print(f"  last output: {summary}")

        env = {key: value for key, value in os.environ.items()
               if not key.startswith("QALITEL_")}
        env.update({
            "QALITEL_INSTANCE_DIR": str(settings.instance_dir),
            "QALITEL_DATABASE_URL": settings.database_url,
            "QALITEL_SECRET_KEY": settings.secret_key,
            "QALITEL_ENCRYPTION_KEY": settings.encryption_key,
            "QALITEL_TENANT_SERVER_URL": settings.tenant_server_url,
            "QALITEL_PG_NAME_PREFIX": settings.pg_name_prefix,
            "QALITEL_TEMPLATE_DATABASE": settings.template_database,
            "QALITEL_MIGRATE_CONNECTION_BUDGET": str(args.budget),
        })
        command = [str(Path(sys.executable).with_name("qalitel")), "tenants", "migrate", "--all"]
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"qalitel process failed: {done.stdout}{done.stderr}")
        print(f"real `qalitel tenants migrate --all` process, nothing pending: "
              f"{elapsed * 1000:.0f} ms wall (interpreter and app start-up included)")
        print(f"  its output: {done.stdout.splitlines()[0]}")

        if args.pending:
            pending = min(args.pending, args.tenants)
            previous = put_behind(app, pending)
            elapsed, summary = timed_cli(app, "--all")
            print(f"migrate --all with {pending} tenants at {previous} (one behind), "
                  f"worker processes: {elapsed * 1000:.0f} ms "
                  f"({elapsed * 1000 / pending:.0f} ms per pending tenant)")
            print(f"  output: {summary}")
            check_sample(app, size=pending)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        return 0 if median <= TARGET_S else 1
    finally:
        if args.backend == "postgresql":
            print(f"cleanup: dropped {cleanup_pg(args.pg_url, prefix)} databases and roles "
                  f"named {prefix}*")
        shutil.rmtree(folder, ignore_errors=True)
        print(f"cleanup: removed {folder}")


if __name__ == "__main__":
    sys.exit(main())
