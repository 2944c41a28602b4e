"""Bounded connections under load: 200+ PostgreSQL tenants behind gunicorn.

Provisions N tenants (PostgreSQL tenants, PostgreSQL platform database), starts gunicorn on
127.0.0.1 with ``--workers`` gthread workers and ``QALITEL_ENGINE_CACHE_SIZE`` /
``QALITEL_TENANT_POOL_SIZE`` chosen so that

    workers × (engine_cache_size × tenant_pool_size + platform pool) < max_connections − reserved

then signs in once at every tenant and hits a signed-in page (``/t/<slug>/``) of random
tenants from concurrent client threads until ``--requests`` requests (or ``--max-seconds``).
While the load runs it samples ``pg_stat_activity`` (this run's tenant roles and platform
database) and, per gunicorn worker, the sockets it holds to PostgreSQL (``/proc``). Prints
requests, failures, throughput, p50/p99 latency and peak connections against the budget.

Why gthread: a request mostly waits on PostgreSQL, so a few threads per worker overlap those
waits, and they make the engine cache work under concurrency (leases, eviction while other
threads hold engines) which sync workers never exercise. The bound holds either way: a worker
keeps at most ``engine_cache_size`` live engines whatever its thread count.

The bench accounts get a cheap PBKDF2 password hash (1000 rounds) so that 200 sign-ins measure
connections, not key stretching. Everything is dropped at the end unless ``--keep``;
``--reuse`` uses a fixed name prefix and instance folder and provisions only what is missing,
so ``--reuse --keep`` keeps the tenants between runs.

    .venv/bin/python bench/bench_connections.py [--tenants 200] [--requests 4000] [--reuse --keep]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_PG = os.environ.get("QALITEL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "bench connections password"
PLATFORM_OVERFLOW = 2  # max_overflow of the platform engine (qalitel._platform_engine_options)
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


# ---------------------------------------------------------------- setup and teardown


def cleanup_pg(pg_url: str, prefix: str) -> int:
    """Drop every database and role whose name starts with this run's prefix."""
    from tenants import pg

    return pg.drop_prefixed(pg_url, prefix)


def platform_url(pg_url: str, database: str) -> str:
    from sqlalchemy import make_url

    return make_url(pg_url).set(drivername="postgresql+psycopg2", database=database) \
        .render_as_string(hide_password=False)


def provision(settings_overrides: dict, count: int, tag: str) -> tuple[list[str], dict]:
    """Create the platform database and the missing tenants; returns slugs and settings."""
    from sqlalchemy import select
    from werkzeug.security import generate_password_hash

    from core.db import db
    from qalitel import create_app
    from tenants.provisioning import create_tenant
    from tenants.registry import Tenant, TenantStatus
    from tenants.service import init_platform

    app = create_app(settings_overrides)
    settings = app.extensions["qalitel_settings"]
    slugs = [f"bc{tag}-{i}" for i in range(count)]
    cheap = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    created = 0
    started = time.perf_counter()
    with app.app_context():
        init_platform()
        existing = {s for s, status in db.session.execute(select(Tenant.slug, Tenant.status))
                    if status is TenantStatus.ACTIVE}
        for slug in slugs:
            if slug not in existing:
                create_tenant(settings, slug, f"Bench {slug}", f"admin@{slug}.example",
                              PASSWORD, password_hash=cheap)
                created += 1
        db.session.remove()
        db.engine.dispose()
    elapsed = time.perf_counter() - started
    print(f"tenants: {count} ({created} provisioned in {elapsed:.1f} s, "
          f"{count - created} reused)")
    env = {"QALITEL_INSTANCE_DIR": str(settings.instance_dir),
           "QALITEL_DATABASE_URL": settings.database_url,
           "QALITEL_SECRET_KEY": settings.secret_key,
           "QALITEL_ENCRYPTION_KEY": settings.encryption_key,
           "QALITEL_TENANT_SERVER_URL": settings.tenant_server_url,
           "QALITEL_PG_NAME_PREFIX": settings.pg_name_prefix,
           "QALITEL_TEMPLATE_DATABASE": settings.template_database}
    return slugs, env


def destroy_all(settings_overrides: dict) -> int:
    from core.db import db
    from qalitel import create_app
    from tenants.provisioning import destroy_tenant
    from tenants.registry import Tenant

    app = create_app(settings_overrides)
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
    return count


# ---------------------------------------------------------------- connection sampling


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def pg_sockets_per_process(pids: list[int], port: int) -> dict[int, int]:
    """Established TCP connections to ``port`` held by each process (Linux ``/proc``)."""
    inodes: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            continue
    counts = dict.fromkeys(pids, 0)
    wanted = f"{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "01" and parts[2].rsplit(":", 1)[1] == wanted and parts[9] in inodes:
                counts[inodes[parts[9]]] += 1
    return counts


@dataclass
class Peaks:
    tenant: int = 0
    platform: int = 0
    total: int = 0
    per_worker: dict[int, int] = field(default_factory=dict)
    samples: int = 0


def sampler(pg_url: str, prefix: str, platform_db: str, master: int, port: int,
            stop: threading.Event, peaks: Peaks) -> None:
    from tenants import pg

    with pg.admin_connection(pg_url) as conn:
        while not stop.is_set():
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FILTER (WHERE starts_with(usename, %s) "
                            "AND datname <> %s), count(*) FILTER (WHERE datname = %s) "
                            "FROM pg_stat_activity", (prefix, platform_db, platform_db))
                tenant, platform = cur.fetchone()
            peaks.tenant = max(peaks.tenant, tenant)
            peaks.platform = max(peaks.platform, platform)
            peaks.total = max(peaks.total, tenant + platform)
            for pid, count in pg_sockets_per_process(children(master), port).items():
                peaks.per_worker[pid] = max(peaks.per_worker.get(pid, 0), count)
            peaks.samples += 1
            stop.wait(0.05)


# ---------------------------------------------------------------- HTTP client


class Session:
    """One signed-in browser at one tenant: cookies, over plain http.client."""

    def __init__(self, port: int, slug: str) -> None:
        self.port = port
        self.slug = slug
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            headers = {"Host": f"127.0.0.1:{self.port}"}
            if self.cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            body = None
            if form is not None:
                body = urllib.parse.urlencode(form)
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    key, _, val = value.split(";", 1)[0].partition("=")
                    if val and "max-age=0" not in value.lower():
                        self.cookies[key.strip()] = val
                    else:
                        self.cookies.pop(key.strip(), None)
            return response.status, text
        finally:
            conn.close()

    def login(self) -> bool:
        status, page = self.request("GET", f"/t/{self.slug}/login")
        match = CSRF_RE.search(page)
        if status != 200 or not match:
            return False
        status, _ = self.request("POST", f"/t/{self.slug}/login", {
            "email": f"admin@{self.slug}.example", "password": PASSWORD,
            "csrf_token": match.group(1)})
        return status == 302


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, limit: int, count: int = 1) -> bool:
        """Reserve ``count`` requests of the ``limit``; False once it is reached."""
        with self.lock:
            if self.sent >= limit:
                return False
            self.sent += count
            return True

    def record(self, started: float, failure: str | None = None) -> None:
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            self.latencies.append(elapsed)
            if failure:
                self.failures.append(failure)


def client(port: int, slugs: list[str], load: Load, limit: int, deadline: float,
           seed: int) -> None:
    rng = random.Random(seed)
    sessions = [Session(port, slug) for slug in slugs]
    for session in sessions:  # every tenant signs in once: 2 requests, timed as one
        load.take(sys.maxsize, 2)
        started = time.perf_counter()
        try:
            ok = session.login()
            load.record(started, None if ok else f"login {session.slug}")
        except Exception as exc:
            load.record(started, f"login {session.slug}: {exc!r}")
    while time.monotonic() < deadline and load.take(limit):
        session = rng.choice(sessions)
        started = time.perf_counter()
        try:
            status, _ = session.request("GET", f"/t/{session.slug}/")
            load.record(started, None if status == 200 else f"GET {session.slug}: {status}")
        except Exception as exc:
            load.record(started, f"GET {session.slug}: {exc!r}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer /healthz")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--requests", type=int, default=4000,
                        help="total requests, sign-ins included")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="load time limit")
    parser.add_argument("--clients", type=int, default=12, help="client threads")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker")
    parser.add_argument("--cache-size", type=int, default=8, help="QALITEL_ENGINE_CACHE_SIZE")
    parser.add_argument("--pool-size", type=int, default=2, help="QALITEL_TENANT_POOL_SIZE")
    parser.add_argument("--platform-pool-size", type=int, default=2,
                        help="QALITEL_PLATFORM_POOL_SIZE")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="admin DSN of the PostgreSQL server")
    parser.add_argument("--reuse", action="store_true",
                        help="fixed prefix and instance folder; provision only missing tenants")
    parser.add_argument("--keep", action="store_true", help="do not drop the tenants at the end")
    args = parser.parse_args(argv)
    print("reproduce:", shlex.join([".venv/bin/python", "bench/bench_connections.py",
                                    *(argv if argv is not None else sys.argv[1:])]))

    from sqlalchemy import make_url

    from tenants import pg

    with pg.admin_connection(args.pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_setting('max_connections')::int, "
                    "current_setting('superuser_reserved_connections')::int")
        max_connections, reserved = cur.fetchone()
    per_worker = args.cache_size * args.pool_size + args.platform_pool_size + PLATFORM_OVERFLOW
    budget = args.workers * per_worker
    print(f"budget: {args.workers} workers × ({args.cache_size} engines × {args.pool_size} "
          f"+ platform {args.platform_pool_size}+{PLATFORM_OVERFLOW}) = {budget} "
          f"(server: max_connections {max_connections} − reserved {reserved} "
          f"= {max_connections - reserved})")
    if budget >= max_connections - reserved:
        print("configured budget does not fit the server; lower --cache-size or --workers")
        return 2

    if args.reuse:
        tag, prefix = "r", "qtbc_"
        folder = Path(tempfile.gettempdir()) / "qalitel-bench-connections"
    else:
        tag = secrets.token_hex(2)
        prefix = f"qtbc{tag}_"
        folder = Path(tempfile.mkdtemp(prefix="qalitel-bench-conn-"))
    platform_db = f"{prefix}platform"
    with pg.admin_connection(args.pg_url) as conn:
        if not pg.database_exists(conn, platform_db):
            with conn.cursor() as cur:
                from psycopg2 import sql

                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(platform_db)))
    overrides = {"instance_dir": folder / "instance", "pg_name_prefix": prefix,
                 "template_database": f"{prefix}template",
                 "database_url": platform_url(args.pg_url, platform_db),
                 "tenant_server_url": args.pg_url}
    port = free_port()
    pg_port = make_url(args.pg_url).port or 5432
    process: subprocess.Popen | None = None
    failures = 1
    try:
        slugs, env = provision(overrides, args.tenants, tag)
        env.update({"QALITEL_ENGINE_CACHE_SIZE": str(args.cache_size),
                    "QALITEL_TENANT_POOL_SIZE": str(args.pool_size),
                    "QALITEL_PLATFORM_POOL_SIZE": str(args.platform_pool_size)})
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("QALITEL_")}
        full_env.update(env)
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        command = [gunicorn, "--workers", str(args.workers), "--worker-class", "gthread",
                   "--threads", str(args.threads), "--bind", f"127.0.0.1:{port}",
                   "--log-level", "warning", "wsgi:app"]
        print("server:", shlex.join(command))
        process = subprocess.Popen(command, cwd=ROOT, env=full_env)
        wait_ready(port, process)
        workers = children(process.pid)
        print(f"gunicorn master {process.pid}, workers {workers}, port {port}")

        stop = threading.Event()
        peaks = Peaks()
        watcher = threading.Thread(target=sampler, args=(args.pg_url, prefix, platform_db,
                                                         process.pid, pg_port, stop, peaks))
        watcher.start()
        load = Load()
        limit = max(args.requests, 2 * len(slugs))
        deadline = time.monotonic() + args.max_seconds
        shares = [slugs[i::args.clients] for i in range(args.clients)]
        threads = [threading.Thread(target=client, args=(port, share, load, limit, deadline, i))
                   for i, share in enumerate(shares) if share]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        stop.set()
        watcher.join()

        requests_done = load.sent
        failures = len(load.failures)
        print(f"\nrequests: {requests_done} in {elapsed:.1f} s "
              f"({requests_done / elapsed:.0f} req/s) from {len(threads)} client threads, "
              f"{len(slugs)} tenants")
        print(f"failures: {failures}" + (f"  e.g. {load.failures[:3]}" if failures else ""))
        print(f"latency: p50 {statistics.median(load.latencies):.1f} ms, "
              f"p99 {pct(load.latencies, 0.99):.1f} ms (a sign-in counts as one)")
        print(f"peak connections (pg_stat_activity, {peaks.samples} samples): "
              f"tenant {peaks.tenant}, platform {peaks.platform}, total {peaks.total} "
              f"≤ budget {budget}: {'ok' if peaks.total <= budget else 'OVER'}")
        worst = max(peaks.per_worker.values(), default=0)
        print(f"peak per worker (sockets to PostgreSQL): "
              f"{dict(sorted(peaks.per_worker.items()))} ≤ {per_worker}: "
              f"{'ok' if worst <= per_worker else 'OVER'}")
        if peaks.total > budget or worst > per_worker:
            failures += 1
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if args.keep:
            print(f"\nkept: prefix {prefix}, instance {folder} (rerun with --reuse)")
        else:
            dropped = destroy_all(overrides)
            left = cleanup_pg(args.pg_url, prefix)
            shutil.rmtree(folder, ignore_errors=True)
            print(f"\ncleanup: {dropped} tenants destroyed, {left} more objects of prefix "
                  f"{prefix} dropped (template, platform database)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
