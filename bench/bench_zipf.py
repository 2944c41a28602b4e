"""Zipf: the record list under Zipf-distributed traffic over 1,000 tenants vs one tenant.

The tenant of each request is drawn from a Zipf law of exponent ``--exponent`` (s = 1.1 by
default): the tenant of rank k gets a share ∝ 1 / k^s, so a few tenants are busy and a long
tail is rarely seen (with s = 1.1 over 1,000 tenants the first takes 18 %, the first 8
about 45 %, the last 500 about 6 %: printed at the start). Same gunicorn, same run, alternating
phases ``one-tenant`` (every request to ``bs-0``, after an unmeasured warm-up) and
``zipf-1000``, ``--rounds`` times; prints every phase and the ratio of the medians of req/s,
zipf / one tenant (target ≥ 0.85). Defaults as ``bench_spread.py`` (2 gthread workers × 4
threads, engine cache 8, pool 2, 12 clients); the budget must fit ``max_connections``.

1,000 tenants take minutes to provision: build them once and keep them,

    .venv/bin/python bench/bench_zipf.py --reuse --keep [--tenants 1000] [--exponent 1.1]
        [--requests 600] [--rounds 2] [--env NAME=VALUE]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import serving  # noqa: E402  (after the path is set)
from bench import serving_load as load  # noqa: E402

TARGET = 0.85


def zipf_chooser(slugs: list[str], exponent: float) -> tuple[load.Chooser, list[float]]:
    """A chooser drawing ``slugs[k-1]`` with probability ∝ 1 / k^exponent; and the shares."""
    weights = [1 / (k ** exponent) for k in range(1, len(slugs) + 1)]
    total = sum(weights)
    shares = [w / total for w in weights]
    cumulative = list(itertools.accumulate(weights))

    def choose(rng):
        return rng.choices(slugs, cum_weights=cumulative)[0]

    return choose, shares


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--exponent", type=float, default=1.1, help="Zipf exponent s")
    parser.add_argument("--requests", type=int, default=600, help="measured requests per phase")
    parser.add_argument("--warmup", type=int, default=40, help="unmeasured requests per warm-up")
    parser.add_argument("--rounds", type=int, default=2, help="one-tenant/zipf pairs of phases")
    parser.add_argument("--max-seconds", type=float, default=180.0, help="time limit per phase")
    serving.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.tenants < 2 or args.exponent <= 0 or args.rounds < 1 or args.requests < 1:
        parser.error("want --tenants ≥ 2, --exponent > 0, --rounds ≥ 1, --requests ≥ 1")

    def body(world: serving.World, servers: list[serving.Server]) -> int:
        slugs = serving.provision(world, args.tenants)
        choose, shares = zipf_chooser(slugs, args.exponent)
        cache = args.cache_size
        print(f"zipf s={args.exponent}: top tenant {shares[0]:.1%}, top {cache} (the engine "
              f"cache) {sum(shares[:cache]):.1%}, top 100 {sum(shares[:100]):.1%}, last half "
              f"{sum(shares[len(shares) // 2:]):.1%} of the requests")
        server = serving.Server(world, args, serving.Budget.of(args)).start()
        servers.append(server)
        sessions, login_failures = load.sign_in(server.port, slugs, args.clients)
        first = slugs[0]
        return load.compare([load.Arm(f"zipf-{len(slugs)}", server, sessions, choose,
                                      warm_up=False),
                             load.Arm("one-tenant", server, sessions, lambda _rng: first)],
                            args, "zipf / one tenant", TARGET, login_failures)

    return serving.run("bench_zipf.py", argv, args, body)


if __name__ == "__main__":
    raise SystemExit(main())
