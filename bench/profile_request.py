"""Where a warm and a cold signed-in record-list request spend their time, in process.

The app is built as ``wsgi.py`` builds it (``create_app()``), with the benches' settings
(PostgreSQL tenants and platform database, engine cache 8, tenant pool 2, platform pool 2,
``--env`` on top) and driven through Flask's test client, signed in at ``--tenants`` tenants
(their sessions kept). *Warm*: the list of one tenant whose engine is cached and connected.
*Cold*: the first list request of a tenant after the engine cache was cleared (a new engine,
a first connection, its identity check and dialect initialisation). Three passes of each:

1. unprofiled: the median wall time per request (the figure the shares below are scaled to);
2. cProfile: top functions by cumulative and by own time;
3. a stack sampler (a thread reads the request thread's stack every ``--interval`` ms) that
   attributes each sample to one part: if a cold-path frame is on the stack (engine build,
   connect, identity check, dialect init, pool pre-ping) the outermost of them; else SQL
   compile or query execution if on it; else the innermost of tenant resolution, Flask-Login
   user load, prefs cookie, CSRF, babel, template render; else other.

    .venv/bin/python bench/profile_request.py [--tenants 20] [--warm 200] [--top 25]
        [--cache-size 8] [--pool-size 2] [--env NAME=VALUE] [--reuse --keep]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import serving  # noqa: E402  (after the path is set)
from bench import serving_load as load  # noqa: E402

# (part, file fragment, function names or None for any): matched against stack frames.
COLD = (("engine build", "tenants/engines.py", {"build_engine"}),
        ("connect", "psycopg2/__init__.py", {"connect"}),
        ("identity check", "tenants/engines.py", {"check_identity"}),
        ("dialect init", "sqlalchemy/engine/create.py", {"first_connect"}),
        ("dialect init", "sqlalchemy/dialects/postgresql/", {"initialize", "on_connect"}),
        ("pool pre-ping", "sqlalchemy/engine/default.py", {"do_ping"}),
        ("pool pre-ping", "sqlalchemy/dialects/postgresql/_psycopg_common.py", {"do_ping"}),
        ("pool pre-ping", "core/pool_ping.py", None))
SQL = (("SQL compile", "sqlalchemy/sql/elements.py", {"_compile_w_cache"}),
       ("query execution", "sqlalchemy/engine/default.py", {"do_execute",
                                                           "do_execute_no_params"}))
APP = (("tenant resolution", "tenants/resolution.py", None),
       ("Flask-Login user load", "flask_login/login_manager.py", {"_load_user"}),
       ("prefs cookie", "qalitel/prefs.py", None),
       ("CSRF", "flask_wtf/csrf.py", None),
       ("babel", "flask_babel/", None),
       ("babel", "/babel/", None),
       ("template render", "flask/templating.py", {"render_template"}))
PARTS = ("engine build", "connect", "identity check", "dialect init", "pool pre-ping",
         "SQL compile", "query execution", "tenant resolution", "Flask-Login user load",
         "prefs cookie", "CSRF", "babel", "template render", "other")


def match(frame, rules) -> str | None:
    code = frame.f_code
    for part, fragment, names in rules:
        if fragment in code.co_filename and (names is None or code.co_name in names):
            return part
    return None


def attribute(frame) -> str:
    """The part one stack sample belongs to (see the module's docstring)."""
    stack = []
    while frame is not None:
        stack.append(frame)
        frame = frame.f_back
    for f in reversed(stack):  # outermost first
        part = match(f, COLD)
        if part:
            return part
    for rules in (SQL, APP):
        for f in stack:  # innermost first
            part = match(f, rules)
            if part:
                return part
    return "other"


class Sampler:
    """Samples one thread's stack every ``interval`` seconds while :attr:`active`."""

    def __init__(self, thread_id: int, interval: float) -> None:
        self.thread_id, self.interval = thread_id, interval
        self.counts: Counter[str] = Counter()
        self.active = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            if self.active:
                frame = sys._current_frames().get(self.thread_id)
                if frame is not None:
                    self.counts[attribute(frame)] += 1
            time.sleep(self.interval)


def login(client, slug: str) -> bool:
    page = client.get(f"/t/{slug}/login").get_data(as_text=True)
    token = load.CSRF_RE.search(page)
    if not token:
        return False
    answer = client.post(f"/t/{slug}/login", data={
        "email": f"admin@{slug}.example", "password": serving.PASSWORD,
        "csrf_token": token.group(1)})
    return answer.status_code == 302


def request(client, slug: str, failures: list[str]) -> float:
    started = time.perf_counter()
    answer = client.get(load.records_path(slug), headers={"Accept-Language": "en"})
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        failures.append(f"GET {slug}: {answer.status_code}")
    return elapsed


class Statements:
    """Counts the statements SQLAlchemy sends, by database (platform or tenant) and verb,
    while :attr:`active`. Not seen: pool pre-pings, the identity check's raw cursor and the
    dialect's first-connect queries (the cold path's own statements)."""

    def __init__(self, platform_db: str) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        self.platform_db = platform_db
        self.counts: Counter[tuple[str, str]] = Counter()
        self.active = False
        event.listen(Engine, "before_cursor_execute", self.count)

    def count(self, conn, _cursor, statement: str, *_args) -> None:
        if self.active:
            where = "platform" if conn.engine.url.database == self.platform_db else "tenant"
            self.counts[(where, (statement.split() or ["?"])[0].upper())] += 1

    def line(self, requests: int) -> str:
        parts = [f"{where} {verb} {n / requests:.1f}"
                 for (where, verb), n in sorted(self.counts.items())]
        return (f"{sum(self.counts.values()) / requests:.1f} statements a request: "
                + ", ".join(parts))


def top(profile: cProfile.Profile, key: str, count: int, calls: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats(key).print_stats(count)
    text = re.sub(r"/\S*/site-packages/", "", out.getvalue())
    text = text.replace(str(serving.ROOT) + "/", "")
    return f"(totals over {calls} requests)\n" + text[text.find("   ncalls"):]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=20, help="cold requests (one a tenant)")
    parser.add_argument("--warm", type=int, default=200, help="warm requests per pass")
    parser.add_argument("--top", type=int, default=25, help="functions listed per table")
    parser.add_argument("--interval", type=float, default=0.5, help="sampling interval, ms")
    serving.add_arguments(parser, workers=1)
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.warm < 1:
        parser.error("want --tenants ≥ 1 and --warm ≥ 1")
    serving.reproduce("profile_request.py", argv)
    world = serving.open_world(args.pg_url, args.reuse)
    failures: list[str] = []
    try:
        slugs = serving.provision(world, args.tenants + 1)
        os.environ.update(serving.app_env(world, serving.Budget.of(args), args))
        from qalitel import create_app

        app = create_app()
        engines = app.extensions["qalitel_engines"]
        clients = {slug: app.test_client() for slug in slugs}
        failures += [f"login {s}" for s, c in clients.items() if not login(c, s)]
        hot, cold = slugs[0], slugs[1:]
        for _ in range(20):
            request(clients[hot], hot, failures)

        def warm_pass() -> list[float]:
            return [request(clients[hot], hot, failures) for _ in range(args.warm)]

        def cold_pass() -> list[float]:
            times = []
            for slug in [*cold, hot]:  # the warm tenant last: connected again after
                engines.clear()
                times.append(request(clients[slug], slug, failures))
            return times

        statements = Statements(world.platform_db)
        sampler = Sampler(threading.get_ident(), args.interval / 1000)
        sampler.thread.start()
        sys.setswitchinterval(args.interval / 4000)
        for name, run in (("warm", warm_pass), ("cold", cold_pass)):
            wall = statistics.median(run())
            profile = cProfile.Profile()
            profile.enable()
            calls = len(run())
            profile.disable()
            sampler.counts.clear()
            sampler.active = True
            run()
            sampler.active = False
            counts = dict(sampler.counts)
            statements.counts.clear()
            statements.active = True
            run()
            statements.active = False
            print(f"\n==== {name} request: median {wall:.1f} ms unprofiled ({calls} requests)")
            print(f"\n-- {name}: top {args.top} by cumulative time")
            print(top(profile, "cumulative", args.top, calls))
            print(f"-- {name}: top {args.top} by own time")
            print(top(profile, "tottime", args.top, calls))
            print(f"-- {name}: {statements.line(calls)}")
            total = sum(counts.values()) or 1
            print(f"-- {name}: breakdown ({total} stack samples, shares scaled to "
                  f"{wall:.1f} ms)")
            for part in PARTS:
                share = counts.get(part, 0) / total
                print(f"  {part:<24} {share * wall:6.1f} ms  {share:6.1%}")
        sampler.stop.set()
        print(f"\nfailures: {len(failures)}" + (f" e.g. {failures[:3]}" if failures else ""))
        print("load after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
        engines.clear()
        from core.db import db

        with app.app_context():
            db.engine.dispose()
    finally:
        serving.close_world(world, args.keep)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
