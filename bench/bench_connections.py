"""Bounded connections under load: 200+ PostgreSQL tenants behind gunicorn.

Provisions N tenants (PostgreSQL tenants, PostgreSQL platform database; ``bench/serving.py``),
starts the README's serving command (``gunicorn -c gunicorn.conf.py``) with ``--workers``
gthread workers and ``QALITEL_ENGINE_CACHE_SIZE`` / ``QALITEL_TENANT_POOL_SIZE`` chosen so that

    workers × (engine_cache_size × tenant_pool_size + platform pool) ≤ max_connections − reserved

then signs in once at every tenant and hits a signed-in page (``/t/<slug>/``, the dashboard)
of random tenants from concurrent client threads until ``--requests`` requests (or
``--max-seconds``). While the load runs it samples ``pg_stat_activity`` (this run's tenant
roles and platform database) and, per gunicorn worker, the sockets it holds to PostgreSQL
(``/proc``). Prints requests, failures, throughput, p50/p99 latency and peak connections
against the budget; exit status 1 on a failed request or a worker over its budget.

Why gthread: a request mostly waits on PostgreSQL, so a few threads per worker overlap those
waits, and they make the engine cache work under concurrency (leases, eviction while other
threads hold engines) which sync workers never exercise. The bound holds either way: a worker
keeps at most ``engine_cache_size`` live engines whatever its thread count.

Everything is dropped at the end unless ``--keep``; ``--reuse`` uses the harness's fixed
prefix and instance folder and provisions only what is missing.

    .venv/bin/python bench/bench_connections.py [--tenants 200] [--requests 4000] [--reuse --keep]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import serving  # noqa: E402  (after the path is set)
from bench import serving_load as load  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--requests", type=int, default=4000,
                        help="dashboard requests after the sign-ins")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="load time limit")
    serving.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.requests < 1:
        parser.error("want --tenants ≥ 1 and --requests ≥ 1")

    def body(world: serving.World, servers: list[serving.Server]) -> int:
        slugs = serving.provision(world, args.tenants)
        server = serving.Server(world, args, serving.Budget.of(args)).start()
        servers.append(server)
        print(f"gunicorn master {server.pid}, workers {server.workers()}, port {server.port}")
        sessions, login_failures = load.sign_in(server.port, slugs, args.clients)
        phase = load.run_phase(f"random-{len(slugs)}", server, sessions,
                               lambda rng: rng.choice(slugs), args.requests, args.clients,
                               args.max_seconds, 1, path=lambda slug: f"/t/{slug}/")
        return load.failed([phase], login_failures)

    return serving.run("bench_connections.py", argv, args, body)


if __name__ == "__main__":
    raise SystemExit(main())
