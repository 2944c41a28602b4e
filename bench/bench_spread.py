"""Spread: the record list across 200 tenants chosen uniformly vs the same clients on 8.

One gunicorn (the README's serving command: ``gunicorn -c gunicorn.conf.py``, 2 gthread
workers × 4 threads, engine cache 8, tenant pool 2 by default), one signed-in session per
tenant, then alternating phases in the same run — ``warm-8`` (each request to one of the
first 8 tenants, after a short unmeasured warm-up) and ``spread-200`` (each request to any
of the 200, uniformly) — ``--rounds`` times. Prints every phase (requests, failures, req/s,
p50, p99, peak connections against the budget) and the ratio of the medians of req/s,
spread / warm (target ≥ 0.85). Exit status 1 only on failed requests, a worker over its
connection budget or a broken setup; 2 when the budget does not fit the server.

    .venv/bin/python bench/bench_spread.py [--tenants 200] [--warm-tenants 8] [--requests 600]
        [--rounds 2] [--clients 12] [--workers 2 --threads 4 --cache-size 8 --pool-size 2]
        [--env NAME=VALUE] [--reuse --keep]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import serving  # noqa: E402  (after the path is set)
from bench import serving_load as load  # noqa: E402

TARGET = 0.85


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--warm-tenants", type=int, default=8)
    parser.add_argument("--requests", type=int, default=600, help="measured requests per phase")
    parser.add_argument("--warmup", type=int, default=40, help="unmeasured requests per warm-up")
    parser.add_argument("--rounds", type=int, default=2, help="warm/spread pairs of phases")
    parser.add_argument("--max-seconds", type=float, default=180.0, help="time limit per phase")
    serving.add_arguments(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.warm_tenants <= args.tenants or args.rounds < 1 or args.requests < 1:
        parser.error("want 1 ≤ --warm-tenants ≤ --tenants, --rounds ≥ 1, --requests ≥ 1")

    def body(world: serving.World, servers: list[serving.Server]) -> int:
        slugs = serving.provision(world, args.tenants)
        server = serving.Server(world, args, serving.Budget.of(args)).start()
        servers.append(server)
        sessions, login_failures = load.sign_in(server.port, slugs, args.clients)
        warm = slugs[:args.warm_tenants]

        def on_warm(rng):
            return rng.choice(warm)

        def on_all(rng):
            return rng.choice(slugs)

        return load.compare([load.Arm(f"spread-{len(slugs)}", server, sessions, on_all,
                                      warm_up=False),
                             load.Arm(f"warm-{len(warm)}", server, sessions, on_warm)],
                            args, "spread / warm", TARGET, login_failures)

    return serving.run("bench_spread.py", argv, args, body)


if __name__ == "__main__":
    raise SystemExit(main())
