"""What a tenant without a live connection costs the database server: a new PostgreSQL
backend, in server CPU, beside the same request on a warm backend.

In process (the app as ``wsgi.py`` builds it, Flask's test client, signed in as each tenant's
admin), for each of ``--tenants`` tenants: the engine cache is cleared and the record list
requested (a new connection, so a new server backend: fork, start-up, catalogue caches filled
by the page's first statements), then requested again on that backend, ``--warm`` times. The
backend is found by its ``application_name`` (``qalitel:<slug>``) and its CPU read from
``/proc/<pid>/schedstat`` (nanoseconds on a CPU since the backend started), so the server must
run on this host. Prints medians of the client's wall time and of the backend's CPU, cold
and warm, and what the difference means for traffic where every request finds its tenant
without a connection (the spread benchmark's 200 tenants against an 8-engine cache): the
server alone adds ``cold − warm`` of CPU to each such request.

    .venv/bin/python bench/bench_backend_start.py --reuse --keep [--tenants 40] [--warm 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import serving  # noqa: E402  (after the path is set)
from bench import serving_load as load  # noqa: E402
from bench.profile_request import login  # noqa: E402


def backend_cpu_ms(pg_url: str, slug: str) -> float | None:
    """CPU used so far by the server backend of this tenant's one connection."""
    from tenants import pg

    with pg.admin_connection(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                    (f"qalitel:{slug}"[:63],))
        pids = [row[0] for row in cur.fetchall()]
    if len(pids) != 1:
        return None
    try:
        return int(Path(f"/proc/{pids[0]}/schedstat").read_text().split()[0]) / 1e6
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=40)
    parser.add_argument("--warm", type=int, default=20, help="warm requests per tenant")
    serving.add_arguments(parser, workers=1, cache_size=1, pool_size=1)
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.warm < 1:
        parser.error("want --tenants ≥ 1 and --warm ≥ 1")
    serving.reproduce("bench_backend_start.py", argv)
    world = serving.open_world(args.pg_url, args.reuse)
    failures: list[str] = []
    cold_wall, warm_wall, cold_cpu, warm_cpu = [], [], [], []
    try:
        slugs = serving.provision(world, args.tenants)
        os.environ.update(serving.app_env(world, serving.Budget.of(args), args))
        from qalitel import create_app

        app = create_app()
        engines = app.extensions["qalitel_engines"]
        for slug in slugs:
            client = app.test_client()
            if not login(client, slug):
                failures.append(f"login {slug}")
                continue
            engines.clear()
            started = time.perf_counter()
            status = client.get(load.records_path(slug)).status_code
            cold_wall.append((time.perf_counter() - started) * 1000)
            first = backend_cpu_ms(args.pg_url, slug)
            for _ in range(args.warm):
                started = time.perf_counter()
                status = max(status, client.get(load.records_path(slug)).status_code)
                warm_wall.append((time.perf_counter() - started) * 1000)
            last = backend_cpu_ms(args.pg_url, slug)
            if status != 200:
                failures.append(f"GET {slug}: {status}")
            if first is None or last is None:
                failures.append(f"{slug}: backend not found (is the server on this host?)")
                continue
            cold_cpu.append(first)
            warm_cpu.append((last - first) / args.warm)
        engines.clear()
    finally:
        serving.close_world(world, args.keep)
    if cold_cpu:
        med = statistics.median
        print(f"\nclient wall, list page:  new backend {med(cold_wall):6.2f} ms   "
              f"warm {med(warm_wall):6.2f} ms   (medians, {len(cold_wall)} tenants)")
        print(f"server backend CPU:      new backend {med(cold_cpu):6.2f} ms   "
              f"warm {med(warm_cpu):6.2f} ms   → a request without a live connection costs "
              f"the server {med(cold_cpu) - med(warm_cpu):.2f} ms more CPU "
              f"({med(cold_cpu) / med(warm_cpu):.1f}×), before the postmaster's fork")
    print(f"failures: {len(failures)}" + "".join(f"\n  {f}" for f in failures[:10]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
