"""Warm: a signed-in record list of 25 rows vs the bare Flask + SQLAlchemy floor.

Two gunicorns started alike (``gunicorn -c gunicorn.conf.py``, the same workers, threads,
worker class and access log): the app (``wsgi:app``) and ``bench/floor_app.py``, which reads
the same count and 25 rows, with the same columns, from the SAME tenant database as the SAME
tenant role, and renders them with a small Jinja template. The same clients alternate
phases ``ours`` (signed in, ``/t/bs-0/records/``) and ``floor`` (the same URL on the floor),
each after an unmeasured warm-up, ``--rounds`` times (A/B/A/B); prints every phase and the
ratio of the medians of req/s, ours / floor (target ≥ 0.5).

    .venv/bin/python bench/bench_warm.py [--requests 1500] [--rounds 3] [--clients 4]
        [--workers 2 --threads 4] [--env NAME=VALUE] [--reuse --keep]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import serving  # noqa: E402  (after the path is set)
from bench import serving_load as load  # noqa: E402

TARGET = 0.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1500, help="measured requests per phase")
    parser.add_argument("--warmup", type=int, default=40, help="unmeasured requests per warm-up")
    parser.add_argument("--rounds", type=int, default=3, help="ours/floor pairs of phases")
    parser.add_argument("--max-seconds", type=float, default=180.0, help="time limit per phase")
    serving.add_arguments(parser, clients=4)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.requests < 1:
        parser.error("want --rounds ≥ 1 and --requests ≥ 1")
    budget = serving.Budget.of(args)
    floor_budget = serving.Budget(args.workers, 1, args.threads, 0, overflow=0)

    def body(world: serving.World, servers: list[serving.Server]) -> int:
        slug = serving.provision(world, 1)[0]
        floor_env = {"FLOOR_DATABASE_URL": serving.tenant_dsn(world, slug),
                     "FLOOR_POOL_SIZE": str(args.threads), "FLOOR_SLUG": slug}
        ours = serving.Server(world, args, budget).start()
        servers.append(ours)
        floor = serving.Server(world, args, floor_budget, app="bench.floor_app:app",
                               env=floor_env, label="floor").start()
        servers.append(floor)
        sessions, login_failures = load.sign_in(ours.port, [slug], 1)
        status, page = sessions[slug].request("GET", load.records_path(slug))
        rows = page.count("<tr>") - 1 if status == 200 else 0
        print(f"list page: status {status}, {rows} rows", flush=True)
        if not rows:
            login_failures.append("list page")
        bare = {slug: load.Session(floor.port, slug)}
        return load.compare([load.Arm("ours", ours, sessions, lambda _rng: slug),
                             load.Arm("floor", floor, bare, lambda _rng: slug)],
                            args, "ours / floor", TARGET, login_failures,
                            total_budget=budget.total + floor_budget.total)

    return serving.run("bench_warm.py", argv, args, body, [budget, floor_budget])


if __name__ == "__main__":
    raise SystemExit(main())
