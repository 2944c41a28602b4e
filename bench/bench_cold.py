"""Cold: the first request to a tenant the serving process has never seen vs the second.

Signs in at K tenants (default 40) through a first gunicorn, stops it, starts another with
ONE worker (so the serving process has never seen those tenants; the sessions stay valid),
requests the record list of one extra tenant twice (the process's own first-request costs:
imports, templates), then, sequentially, for each of the K tenants: the first request
(``cold``: a new engine, a first connection, the identity check) and the second (``warm``).
When the engine cache is smaller than K the cache has cycled by the end of that pass, so a
second pass requests each tenant once more (``evicted``: the process has seen the tenant,
its engine is gone). Prints median and p90 of cold, warm, evicted and of the per-tenant
differences cold − warm (target ≤ 20 ms) and evicted − warm, with the peak connections.

    .venv/bin/python bench/bench_cold.py [--tenants 40] [--cache-size 8] [--threads 4]
        [--env NAME=VALUE] [--reuse --keep]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import serving  # noqa: E402  (after the path is set)
from bench import serving_load as load  # noqa: E402
from bench.bench_provision import line  # noqa: E402

TARGET_MS = 20.0


def timed_get(session: load.Session, phase: load.Phase) -> float:
    started = time.perf_counter()
    try:
        status, _ = session.request("GET", load.records_path(session.slug))
        if status != 200:
            phase.failures.append(f"GET {session.slug}: {status}")
    except Exception as exc:
        phase.failures.append(f"GET {session.slug}: {exc!r}")
    elapsed = (time.perf_counter() - started) * 1000
    phase.latencies.append(elapsed)
    phase.elapsed += elapsed / 1000
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=40, help="K tenants visited cold")
    serving.add_arguments(parser, clients=4, workers=1)
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.workers != 1:
        parser.error("want --tenants ≥ 1 and --workers 1 (one serving process)")
    budget = serving.Budget.of(args)

    def body(world: serving.World, servers: list[serving.Server]) -> int:
        slugs = serving.provision(world, args.tenants + 1)
        extra, visited = slugs[-1], slugs[:-1]
        first = serving.Server(world, args, budget, label="sign-in").start()
        servers.append(first)
        sessions, login_failures = load.sign_in(first.port, slugs, args.clients)
        first.stop()
        server = serving.Server(world, args, budget, label="cold").start()
        servers.append(server)
        for session in sessions.values():
            session.port = server.port
        phases = {name: load.Phase(name, budget=budget) for name in
                  ("process warm-up", "cold", "warm", "evicted")}
        stop = threading.Event()
        peaks = load.Peaks()
        watcher = threading.Thread(target=load.sample, args=(world, server.pid, stop, peaks))
        watcher.start()
        cold, warm, evicted = {}, {}, {}
        try:
            for _ in range(2):
                timed_get(sessions[extra], phases["process warm-up"])
            for slug in visited:
                cold[slug] = timed_get(sessions[slug], phases["cold"])
                warm[slug] = timed_get(sessions[slug], phases["warm"])
            if args.cache_size < len(visited):
                for slug in visited:
                    evicted[slug] = timed_get(sessions[slug], phases["evicted"])
        finally:
            stop.set()
            watcher.join()
        print()
        for phase in phases.values():
            if phase.latencies:
                phase.peaks = peaks
                load.report(phase, server)
        print()
        print(line("cold (first request)", list(cold.values())))
        print(line("warm (second request)", list(warm.values())))
        print(line("cold − warm", [cold[s] - warm[s] for s in visited], TARGET_MS))
        if evicted:
            print(line("evicted (revisit)", list(evicted.values())))
            print(line("evicted − warm", [evicted[s] - warm[s] for s in visited]))
        else:
            print(f"evicted: not measured (engine cache {args.cache_size} ≥ {len(visited)} "
                  "tenants)")
        return load.failed(list(phases.values()), login_failures)

    return serving.run("bench_cold.py", argv, args, body)


if __name__ == "__main__":
    raise SystemExit(main())
