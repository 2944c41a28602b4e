"""Provisioning speed: full tenant provisioning beside a plain ``CREATE DATABASE … TEMPLATE``.

Runs on a throwaway instance folder with a unique name prefix, provisions N tenants per
backend, prints medians and p90 of:

* PostgreSQL: a plain ``CREATE DATABASE x TEMPLATE <template>`` (the floor),
* full provisioning without the first admin's password hash (PostgreSQL, SQLite),
* the password hash alone (deliberately slow, reported apart),
* every provisioning step (``ProvisionResult.timings``),

then drops every database, role and file it made. Plain clones and provisionings are
interleaved so machine noise hits both alike.

    .venv/bin/python bench/bench_provision.py [-n 50] [--backend postgresql --backend sqlite]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_PG = os.environ.get("QALITEL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_MS = {"postgresql": 100.0, "sqlite": 30.0}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def line(label: str, values: list[float], target: float | None = None) -> str:
    text = (f"  {label:<38} median {statistics.median(values):8.1f} ms   "
            f"p90 {pct(values, 0.9):8.1f} ms   (n={len(values)})")
    if target is not None:
        verdict = "ok" if statistics.median(values) <= target else "OVER"
        text += f"   target ≤ {target:.0f} ms: {verdict}"
    return text


def cleanup_pg(pg_url: str, prefix: str) -> list[str]:
    """Drop every database and role whose name starts with this run's prefix."""
    from tenants import pg

    dropped: list[str] = []
    with pg.admin_connection(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,))
        for (name,) in cur.fetchall():
            pg.drop_database(conn, name)
            dropped.append(name)
        cur.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (prefix,))
        for (name,) in cur.fetchall():
            pg.drop_role(conn, name)
            dropped.append(name)
    return dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--tenants", type=int, default=50, help="tenants per backend")
    parser.add_argument("--backend", action="append", choices=["postgresql", "sqlite"],
                        help="backends to measure (default: both)")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="admin DSN of the PostgreSQL server")
    parser.add_argument("--strategy", choices=["wal_log", "file_copy"],
                        help="CREATE DATABASE strategy for provisioning and the plain clone "
                             "(default: the application's)")
    args = parser.parse_args(argv)
    backends = args.backend or ["postgresql", "sqlite"]
    print("reproduce:", shlex.join([".venv/bin/python", "bench/bench_provision.py",
                                    *(argv if argv is not None else sys.argv[1:])]))

    from psycopg2 import sql

    from core.db import db
    from qalitel import create_app
    from tenants import pg, provisioning
    from tenants.provisioning import create_tenant, destroy_tenant
    from tenants.registry import Tenant
    from tenants.service import init_platform

    run = secrets.token_hex(3)
    prefix = f"qtb{run}_"
    template = f"qtb{run}_template"
    folder = Path(tempfile.mkdtemp(prefix="qalitel-bench-"))
    overrides: dict = {"instance_dir": folder / "instance", "pg_name_prefix": prefix,
                       "template_database": template,
                       "secret_key": secrets.token_urlsafe(32),
                       "tenant_server_url": args.pg_url if "postgresql" in backends else ""}
    if args.strategy:
        provisioning.CLONE_STRATEGY = args.strategy.upper()
    app = create_app(overrides)
    settings = app.extensions["qalitel_settings"]
    print(f"instance {folder}, name prefix {prefix}, {args.tenants} tenants per backend, "
          f"clone strategy {provisioning.CLONE_STRATEGY}")
    failures = 0
    try:
        with app.app_context():
            init_platform()
            for backend in backends:
                # Warm-up: template creation and first imports are one-off costs, not measured.
                started = time.perf_counter()
                create_tenant(settings, f"warm-{backend[:2]}-{run}", "Warm-up",
                              "admin@warm.example", backend=backend,
                              password_hash="x")
                print(f"\n[{backend}] warm-up (template build, imports): "
                      f"{(time.perf_counter() - started) * 1000:.0f} ms")
                plain: list[float] = []
                full: list[float] = []
                hashes: list[float] = []
                steps: dict[str, list[float]] = {}
                with (pg.admin_connection(args.pg_url) if backend == "postgresql"
                      else _null()) as conn:
                    for i in range(args.tenants):
                        if conn is not None:
                            name = f"{prefix}plain{i}"
                            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}{}").format(
                                sql.Identifier(name), sql.Identifier(template),
                                sql.SQL(f" STRATEGY {provisioning.CLONE_STRATEGY}"))
                            with conn.cursor() as cur:
                                began = time.perf_counter()
                                cur.execute(statement)
                                plain.append((time.perf_counter() - began) * 1000)
                        result = create_tenant(settings, f"b{i}-{backend[:2]}-{run}",
                                               f"Bench {i}", f"admin{i}@bench.example",
                                               backend=backend)
                        full.append(result.without_hash_ms)
                        hashes.append(result.timings["hash"])
                        for label, value in result.timings.items():
                            steps.setdefault(label, []).append(value)
                if plain:
                    print(line("plain CREATE DATABASE … TEMPLATE", plain))
                print(line("provisioning without hash", full, TARGET_MS[backend]))
                print(line("first admin's password hash", hashes))
                if plain:
                    print(f"  ratio provisioning / plain clone (medians): "
                          f"{statistics.median(full) / statistics.median(plain):.2f}")
                for label in provisioning.STEPS:
                    if label in steps:
                        print(line(f"  step {label}", steps[label]))
                if TARGET_MS[backend] < statistics.median(full):
                    failures += 1
    finally:
        with app.app_context():
            app.extensions["qalitel_engines"].clear()
            for tenant in db.session.query(Tenant).all():
                try:
                    destroy_tenant(settings, tenant)
                except Exception as exc:  # keep cleaning
                    db.session.rollback()
                    print(f"cleanup of {tenant.slug} failed: {exc}", file=sys.stderr)
            db.session.remove()
            db.engine.dispose()
        if "postgresql" in backends:
            left = cleanup_pg(args.pg_url, prefix)
            print(f"\ncleanup: dropped {len(left)} PostgreSQL objects of prefix {prefix} "
                  "(plain clones, template)")
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if failures else 0


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
