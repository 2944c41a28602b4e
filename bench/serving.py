"""The serving benchmarks' shared harness: PostgreSQL tenants, gunicorn, budget.

* :func:`open_world` names a run: a random prefix and a temporary instance folder, or with
  ``--reuse`` the fixed prefix ``qtbs_`` and ``$TMPDIR/qalitel-bench-serving``, so that the
  tenants (``bs-0`` … ``bs-999``) are built once and kept between runs with ``--keep``.
* :func:`provision` creates the missing tenants (PostgreSQL tenants, PostgreSQL platform
  database) with a cheap PBKDF2 hash (1,000 rounds: sign-ins measure serving, not key
  stretching) and :data:`RECORDS` non-conformities each, written with the first admin through
  provisioning's own first-rows step (no extra connection per tenant).
* :class:`Server` runs the README's serving command, ``gunicorn -c gunicorn.conf.py wsgi:app``,
  with ``-w/--threads/-b`` and an environment: the run's settings, the caller's ``QALITEL_*``
  variables, then ``--env NAME=VALUE`` (last wins), so settings added later pass through.
  Several workers need shared throttle counters: Redis at ``--throttle-uri`` (default
  ``redis://127.0.0.1:6379/0``, a key prefix of the run's own).
* :class:`Budget` (``bench/serving_budget.py``) is ``workers × (engines × pool + platform
  pool + overflow)``; a budget that does not fit ``max_connections − superuser_reserved``
  (less the bench's own two admin connections) is refused before anything starts.

The HTTP side (sessions, load phases, connection sampling, printing) is in
``bench/serving_load.py``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.backup_data import record_values  # noqa: E402  (after the path is set)
from bench.serving_budget import BENCH_CONNECTIONS, PLATFORM_OVERFLOW, Budget, check_budget  # noqa: E402, F401, I001

DEFAULT_PG = os.environ.get("QALITEL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "bench serving password"
RECORDS = 30  # per tenant: the list page shows 25 of them
REUSE_PREFIX = "qtbs_"
SLUG_FORMAT = "bs-{}"


def add_arguments(parser: argparse.ArgumentParser, *, clients: int = 12, workers: int = 2,
                  threads: int = 4, cache_size: int = 8, pool_size: int = 2) -> None:
    """The flags every serving bench shares."""
    parser.add_argument("--clients", type=int, default=clients, help="client threads")
    parser.add_argument("--workers", type=int, default=workers, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=threads, help="gthread threads per worker")
    parser.add_argument("--cache-size", type=int, default=cache_size,
                        help="QALITEL_ENGINE_CACHE_SIZE")
    parser.add_argument("--pool-size", type=int, default=pool_size,
                        help="QALITEL_TENANT_POOL_SIZE")
    parser.add_argument("--platform-pool-size", type=int, default=2,
                        help="QALITEL_PLATFORM_POOL_SIZE")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment of the server (repeatable; wins over the rest)")
    parser.add_argument("--throttle-uri", default="redis://127.0.0.1:6379/0",
                        help="QALITEL_RATELIMIT_STORAGE_URI when --workers > 1")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="admin DSN of the PostgreSQL server")
    parser.add_argument("--reuse", action="store_true",
                        help=f"fixed prefix {REUSE_PREFIX}; provision only missing tenants")
    parser.add_argument("--keep", action="store_true", help="do not drop the tenants at the end")


def reproduce(script: str, argv: list[str] | None) -> None:
    print("reproduce:", shlex.join([".venv/bin/python", f"bench/{script}",
                                    *(argv if argv is not None else sys.argv[1:])]))
    print("load before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), f"on {os.cpu_count()} "
          f"CPUs, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", flush=True)


def extra_env(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--env wants NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def run(script: str, argv: list[str] | None, args: argparse.Namespace,
        body: Callable[[World, list[Server]], int], budgets: list[Budget] | None = None) -> int:
    """A bench's frame: print how to reproduce it, refuse a budget that does not fit (2),
    open the world, run ``body`` (it appends the servers it starts, stopped here; returns
    its failures), close the world; 1 when anything failed, else 0."""
    reproduce(script, argv)
    if not check_budget(args.pg_url, budgets or [Budget.of(args)]):
        return 2
    world = open_world(args.pg_url, args.reuse)
    servers: list[Server] = []
    failures = 1
    try:
        failures = body(world, servers)
    finally:
        for server in servers:
            server.stop()
        close_world(world, args.keep)
    return 1 if failures else 0


# ---------------------------------------------------------------- tenants


@dataclass
class World:
    """One run's names: prefix, instance folder, platform database, settings, tenants."""

    pg_url: str
    prefix: str
    folder: Path
    overrides: dict
    env: dict[str, str] = field(default_factory=dict)
    slugs: list[str] = field(default_factory=list)

    @property
    def platform_db(self) -> str:
        return f"{self.prefix}platform"


def platform_url(pg_url: str, database: str) -> str:
    from sqlalchemy import make_url

    return make_url(pg_url).set(drivername="postgresql+psycopg2", database=database) \
        .render_as_string(hide_password=False)


def open_world(pg_url: str, reuse: bool, prefix: str = REUSE_PREFIX,
               folder_name: str = "qalitel-bench-serving") -> World:
    """The run's names, and its platform database (created when missing)."""
    from psycopg2 import sql

    from tenants import pg

    if reuse:
        folder = Path(tempfile.gettempdir()) / folder_name
    else:
        prefix = f"qtbs{secrets.token_hex(2)}_"
        folder = Path(tempfile.mkdtemp(prefix="qalitel-bench-serving-"))
    world = World(pg_url, prefix, folder, {})
    with pg.admin_connection(pg_url) as conn:
        if not pg.database_exists(conn, world.platform_db):
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(
                    sql.Identifier(world.platform_db)))
    world.overrides = {"instance_dir": folder / "instance", "pg_name_prefix": prefix,
                       "template_database": f"{prefix}template",
                       "database_url": platform_url(pg_url, world.platform_db),
                       "tenant_server_url": pg_url}
    return world


def first_rows(records: int, seed: int):
    """The app's first rows (the admin, id 1 in a fresh database) plus ``records``
    non-conformities detected by that admin."""
    from qalitel.records.models import NonConformity
    from qalitel.tenancy import first_admin_rows

    def rows(admin):
        rng = random.Random(seed)
        start = datetime.now(UTC) - timedelta(days=90)
        table = NonConformity.__table__
        return [*first_admin_rows(admin),
                *((table, record_values(n, 1, rng, start)) for n in range(1, records + 1))]

    return rows


def provision(world: World, count: int, records: int = RECORDS) -> list[str]:
    """Create the missing tenants of ``bs-0`` … ``bs-{count-1}``; fills ``world.env``."""
    from sqlalchemy import select
    from werkzeug.security import generate_password_hash

    from core.db import db
    from qalitel import create_app
    from tenants.provisioning import create_tenant
    from tenants.registry import Tenant, TenantStatus
    from tenants.service import init_platform

    app = create_app(world.overrides)
    settings = app.extensions["qalitel_settings"]
    world.slugs = [SLUG_FORMAT.format(i) for i in range(count)]
    cheap = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    created = 0
    started = time.perf_counter()
    with app.app_context():
        init_platform()
        existing = {s for s, status in db.session.execute(select(Tenant.slug, Tenant.status))
                    if status is TenantStatus.ACTIVE}
        for i, slug in enumerate(world.slugs):
            if slug not in existing:
                create_tenant(settings, slug, f"Bench {slug}", f"admin@{slug}.example",
                              PASSWORD, password_hash=cheap, first_rows=first_rows(records, i))
                created += 1
        db.session.remove()
        db.engine.dispose()
    elapsed = time.perf_counter() - started
    rate = f", {elapsed / created * 1000:.0f} ms each" if created else ""
    print(f"tenants: {count} ({created} provisioned with {records} records each in "
          f"{elapsed:.1f} s{rate}; {count - created} reused), prefix {world.prefix}", flush=True)
    world.env = {"QALITEL_INSTANCE_DIR": str(settings.instance_dir),
                 "QALITEL_DATABASE_URL": settings.database_url,
                 "QALITEL_SECRET_KEY": settings.secret_key,
                 "QALITEL_ENCRYPTION_KEY": settings.encryption_key,
                 "QALITEL_TENANT_SERVER_URL": settings.tenant_server_url,
                 "QALITEL_PG_NAME_PREFIX": settings.pg_name_prefix,
                 "QALITEL_TEMPLATE_DATABASE": settings.template_database}
    return world.slugs


def tenant_dsn(world: World, slug: str) -> str:
    """The URL the app's engine uses for this tenant (its own role and database)."""
    from core.db import db
    from qalitel import create_app
    from tenants.engines import TenantInfo, tenant_url
    from tenants.registry import Tenant

    app = create_app(world.overrides)
    with app.app_context():
        row = db.session.query(Tenant).filter_by(slug=slug).one()
        url = tenant_url(TenantInfo.from_row(row), app.extensions["qalitel_settings"])
        db.session.remove()
        db.engine.dispose()
    return url.render_as_string(hide_password=False)


def close_world(world: World, keep: bool) -> None:
    """Drop every tenant, the template and the platform database, unless ``keep``."""
    if keep:
        print(f"\nkept: prefix {world.prefix}, instance {world.folder} (rerun with --reuse)")
        return
    from core.db import db
    from qalitel import create_app
    from tenants import pg
    from tenants.provisioning import destroy_tenant
    from tenants.registry import Tenant

    app = create_app(world.overrides)
    settings = app.extensions["qalitel_settings"]
    count = 0
    with app.app_context():
        for tenant in db.session.query(Tenant).all():
            try:
                destroy_tenant(settings, tenant)
                count += 1
            except Exception as exc:  # keep going; the prefix sweep below drops the rest
                db.session.rollback()
                print(f"could not destroy {tenant.slug}: {exc}", file=sys.stderr)
        db.session.remove()
        db.engine.dispose()
    left = pg.drop_prefixed(world.pg_url, world.prefix)
    shutil.rmtree(world.folder, ignore_errors=True)
    print(f"\ncleanup: {count} tenants destroyed, {left} more objects of prefix "
          f"{world.prefix} dropped (template, platform database)")


# ---------------------------------------------------------------- gunicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def app_env(world: World, budget: Budget, args: argparse.Namespace,
            env: dict[str, str] | None = None) -> dict[str, str]:
    """The app's configuration for a bench: the world's, the budget's sizes, ``env``, then
    ``--env`` (a served app's, or one a script builds in process)."""
    return {**world.env, "QALITEL_ENGINE_CACHE_SIZE": str(budget.cache_size),
            "QALITEL_TENANT_POOL_SIZE": str(budget.pool_size),
            "QALITEL_PLATFORM_POOL_SIZE": str(budget.platform_pool_size),
            **(env or {}), **extra_env(args.env)}


class Server:
    """``gunicorn -c gunicorn.conf.py`` on a free loopback port, with this environment."""

    def __init__(self, world: World, args: argparse.Namespace, budget: Budget,
                 app: str = "wsgi:app", env: dict[str, str] | None = None,
                 label: str = "app") -> None:
        self.world, self.budget, self.app, self.label = world, budget, app, label
        self.port = free_port()
        inherited = {k: v for k, v in os.environ.items() if k != "QALITEL_TEST_PG_URL"}
        self.env = {**inherited,
                    "QALITEL_RATELIMIT_KEY_PREFIX": f"qbench{secrets.token_hex(4)}",
                    **app_env(world, budget, args, env)}
        if budget.workers > 1:
            self.env.setdefault("QALITEL_RATELIMIT_STORAGE_URI", args.throttle_uri)
        self.command = [str(Path(sys.executable).with_name("gunicorn")), "-c", "gunicorn.conf.py",
                        "--workers", str(budget.workers), "--threads", str(args.threads),
                        "--bind", f"127.0.0.1:{self.port}", app]
        self.log = world.folder / f"gunicorn-{label}-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Server:
        self.world.folder.mkdir(parents=True, exist_ok=True)
        print(f"server ({self.label}):", shlex.join(self.command), f"> {self.log}", flush=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 60) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{tail}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200 and \
                        len(self.workers()) >= self.budget.workers:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer /healthz")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def workers(self) -> list[int]:
        return children(self.pid)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
