"""Benchmark of the non-conformity list page on a tenant with 10,000 records.

Builds a throwaway instance (platform database, one tenant on SQLite or PostgreSQL, users of
each profile, folders — some confidential —, records inserted in bulk, actions, shares),
serves it with gunicorn on 127.0.0.1 (spawned here, a few sync workers), signs in as a
manager and as a plain user, and sends a bounded number of requests to the list page from
a few client threads. Prints requests/s and p50/p90/p99 latency per profile; the target is
p50 <= 50 ms. Everything it created is removed at the end.

    .venv/bin/python bench/bench_record_list.py [--backend sqlite|postgresql] [--records N]
        [--requests N] [--concurrency N] [--workers N] [--url-query QS] [--profiles P,P]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import random
import re
import secrets
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench password 1234"
SLUG = "bench"
TARGET_P50_MS = 50.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get(
        "QALITEL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300,
                        help="measured requests per profile (bounded)")
    parser.add_argument("--concurrency", type=int, default=2, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--url-query", default="",
                        help="query string of the list page, e.g. 'status=open&sort=title'")
    parser.add_argument("--profiles", default="manager,user",
                        help="profiles measured, in this order (manager, user)")
    parser.add_argument("--keep", action="store_true", help="keep the instance folder")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(args: argparse.Namespace, instance: Path, run: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = {
        "QALITEL_ENV": "development",
        "QALITEL_INSTANCE_DIR": str(instance),
        "QALITEL_SECRET_KEY": secrets.token_hex(32),
        "QALITEL_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "QALITEL_PG_NAME_PREFIX": f"qbench{run}_",
        "QALITEL_TEMPLATE_DATABASE": f"qbench{run}_template",
        "QALITEL_ENGINE_CACHE_SIZE": "4",
        "QALITEL_TENANT_POOL_SIZE": "2",
    }
    if args.backend == "postgresql":
        env["QALITEL_TENANT_SERVER_URL"] = args.pg_url
    return env


# ---------------------------------------------------------------- data


def populate(app, args: argparse.Namespace) -> dict[str, str]:
    """Create the tenant, its people, folders, records (bulk), actions and shares."""
    from sqlalchemy import insert, text

    from qalitel.records.models import (
        ACTION_STATUSES,
        ORIGINS,
        SEVERITIES,
        STATUSES,
        Action,
        Folder,
        FolderClearance,
        NonConformity,
        RecordShare,
    )
    from qalitel.users.models import Profile, User
    from qalitel.users.service import hash_password
    from tenants.context import tdb, tenant_context
    from tenants.engines import TenantInfo
    from tenants.provisioning import create_tenant
    from tenants.service import init_platform

    rng = random.Random(42)
    with app.app_context():
        init_platform()
        settings = app.extensions["qalitel_settings"]
        digest = hash_password(PASSWORD)
        result = create_tenant(settings, SLUG, "Bench Industries", f"admin@{SLUG}.example",
                               PASSWORD, admin_name="Bench Admin", backend=args.backend,
                               password_hash=digest)
        with tenant_context(TenantInfo.from_row(result.tenant)) as ctx:
            people = []
            for i in range(30):
                profile = Profile.MANAGER if i < 5 else Profile.USER
                people.append(User(email=f"{profile.value}{i}@{SLUG}.example",
                                   name=f"{profile.value.title()} {i:02d}",
                                   password_hash=digest, profile=profile))
            tdb.add_all(people)
            tdb.flush()
            managers = [u.id for u in people if u.profile == Profile.MANAGER]
            users = [u.id for u in people if u.profile == Profile.USER]
            folders = []
            for i in range(12):
                folder = Folder(name=f"Folder {i:02d}", confidential=i < 3)
                tdb.add(folder)
                folders.append(folder)
            tdb.flush()
            tdb.add(FolderClearance(folder_id=folders[0].id, user_id=managers[0]))
            tdb.commit()

            start = datetime.now(UTC) - timedelta(days=730)
            rows = []
            for n in range(1, args.records + 1):
                created = start + timedelta(minutes=n * 105)
                author = rng.choice(users + managers)
                rows.append({
                    "number": n, "title": f"Non-conformity {n}: {rng.choice(WORDS)} "
                    f"{rng.choice(WORDS)}", "description": " ".join(rng.choices(WORDS, k=30)),
                    "status": rng.choice(STATUSES), "detected_on": created.date(),
                    "detected_by_id": author, "created_by_id": author,
                    "origin": rng.choice(ORIGINS), "severity": rng.choice(SEVERITIES),
                    "folder_id": rng.choice([None, *(f.id for f in folders)]),
                    "assignee_id": rng.choice([None, *managers, *users]),
                    "cause_analysis": "", "created_at": created, "updated_at": created})
            for chunk in range(0, len(rows), 2000):
                tdb.execute(insert(NonConformity), rows[chunk:chunk + 2000])
            ids = list(range(1, args.records + 1))
            actions = []
            for i in range(args.records // 5):
                actions.append({
                    "record_id": rng.choice(ids), "kind": "corrective", "title": f"Action {i}",
                    "description": "", "owner_id": rng.choice(users + managers),
                    "due_date": date.today() + timedelta(days=rng.randint(-60, 60)),
                    "status": rng.choice(ACTION_STATUSES), "effectiveness_comment": "",
                    "created_by_id": managers[0]})
            tdb.execute(insert(Action), actions)
            shares = {(rng.choice(ids), rng.choice(users)) for _ in range(args.records // 20)}
            tdb.execute(insert(RecordShare), [{"record_id": r, "user_id": u}
                                              for r, u in shares])
            tdb.commit()
            # As a database in service would be: statistics gathered; on PostgreSQL vacuumed
            # (autovacuum), on SQLite the write-ahead log folded in.
            if args.backend == "postgresql":
                with ctx.engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM ANALYZE"))
            else:
                tdb.execute(text("ANALYZE"))
                tdb.commit()
                tdb.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
                tdb.commit()
        app.extensions["qalitel_engines"].clear()  # the benchmark's server opens its own
    return {"manager": people[1].email, "user": people[10].email}


WORDS = ("leak", "scratch", "burr", "crack", "label", "torque", "seal", "gasket", "weld",
         "paint", "dimension", "supplier", "audit", "customer", "batch", "line", "press",
         "drill", "calibration", "training", "document", "procedure", "deviation")


def cleanup(app) -> None:
    from core.db import db
    from tenants.provisioning import destroy_tenant
    from tenants.registry import Tenant

    with app.app_context():
        app.extensions["qalitel_engines"].clear()
        settings = app.extensions["qalitel_settings"]
        for tenant in db.session.query(Tenant).all():
            destroy_tenant(settings, tenant)
        db.session.remove()
        db.engine.dispose()


def drop_pg_template(args: argparse.Namespace, env: dict[str, str]) -> None:
    from tenants import pg

    with pg.admin_connection(args.pg_url) as conn:
        pg.drop_database(conn, env["QALITEL_TEMPLATE_DATABASE"])


# ---------------------------------------------------------------- HTTP


class Session:
    """A signed-in browser: a cookie jar and an opener that does not follow redirects."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  NoRedirect())

    def get(self, path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base + path,  # noqa: S310 - our own http URL
                                         headers={"Accept-Language": "en"})
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def login(self, email: str) -> None:
        status, body = self.get(f"/t/{SLUG}/login")
        token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', body)
        assert status == 200 and token, f"login page answered {status}"
        data = urllib.parse.urlencode({"email": email, "password": PASSWORD,
                                       "csrf_token": token.group(1).decode()}).encode()
        request = urllib.request.Request(self.base + f"/t/{SLUG}/login", data=data)  # noqa: S310
        try:
            self.opener.open(request, timeout=30)
        except urllib.error.HTTPError as error:
            if error.code != 302:
                raise RuntimeError(f"login of {email} failed: {error.code}") from None


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited early")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not become ready")


def timed(sessions: list[Session], path: str, total: int) -> dict:
    """Send ``total`` GETs of ``path`` spread over the sessions (one thread each)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))

    def worker(session: Session) -> None:
        nonlocal errors
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            started = time.perf_counter()
            status, _body = session.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                errors += status != 200

    threads = [threading.Thread(target=worker, args=(s,)) for s in sessions]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))]

    return {"requests": len(latencies), "errors": errors, "rps": len(latencies) / wall,
            "p50": statistics.median(latencies), "p90": pct(90), "p99": pct(99),
            "max": latencies[-1]}


def measure_path(base: str, path: str, total: int, concurrency: int) -> dict:
    return timed([Session(base) for _ in range(concurrency)], path, total)


def measure(base: str, email: str, path: str, total: int, concurrency: int) -> dict:
    sessions = []
    body = b""
    for _ in range(concurrency):
        session = Session(base)
        session.login(email)
        for _ in range(20):  # warm-up: engines, templates, caches, plans
            status, body = session.get(path)
            assert status == 200, f"{path} answered {status}"
        sessions.append(session)
    shown = re.search(rb"(\d+) non-conformities</caption>", body)
    result = timed(sessions, path, total)
    result["visible"] = int(shown.group(1)) if shown else None
    return result


# ---------------------------------------------------------------- main


def main() -> int:
    args = parse_args()
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/bench_record_list.py",
                                                *sys.argv[1:]])
    print(f"reproduce: cd {ROOT} && {command}", flush=True)
    run = secrets.token_hex(3)
    instance = Path(tempfile.mkdtemp(prefix="qalitel-bench-"))
    env = environment(args, instance, run)
    os.environ.update(env)

    from qalitel import create_app

    app = create_app()
    proc = None
    try:
        started = time.perf_counter()
        emails = populate(app, args)
        print(f"tenant {SLUG!r} on {args.backend}: {args.records} records, "
              f"{args.records // 5} actions, built in {time.perf_counter() - started:.1f} s",
              flush=True)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--bind",
             f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
            cwd=ROOT, env={**os.environ, **env})
        wait_ready(base, proc)
        path = f"/t/{SLUG}/records/" + (f"?{args.url_query}" if args.url_query else "")
        print(f"gunicorn: {args.workers} sync workers on {base}; {args.requests} requests per "
              f"profile from {args.concurrency} threads to {path}", flush=True)
        print("load average before: {:.2f} {:.2f} {:.2f} on {} CPUs".format(
            *os.getloadavg(), os.cpu_count()), flush=True)
        floor = measure_path(base, "/healthz", min(args.requests, 100), args.concurrency)
        print(f"baseline /healthz (no tenant, no template): p50 {floor['p50']:6.1f} ms | "
              f"p99 {floor['p99']:6.1f} ms", flush=True)
        ok = True
        for profile in args.profiles.split(","):
            result = measure(base, emails[profile], path, args.requests, args.concurrency)
            verdict = "ok" if result["p50"] <= TARGET_P50_MS and not result["errors"] else "SLOW"
            ok = ok and verdict == "ok"
            print(f"{profile:8s} sees {result['visible']:>5} records | "
                  f"{result['requests']} req, {result['errors']} errors | "
                  f"{result['rps']:6.1f} req/s | p50 {result['p50']:6.1f} ms | "
                  f"p90 {result['p90']:6.1f} ms | p99 {result['p99']:6.1f} ms | "
                  f"max {result['max']:6.1f} ms | target p50 <= {TARGET_P50_MS:.0f} ms: "
                  f"{verdict}", flush=True)
        print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
        return 0 if ok else 1
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        cleanup(app)
        if args.backend == "postgresql":
            drop_pg_template(args, env)
        if not args.keep:
            shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
