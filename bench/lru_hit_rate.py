"""How often an engine LRU of a given size finds its tenant under the benches' traffic: a
simulation (no server), to read the spread and Zipf figures against.

Each worker keeps its own LRU and sees a random share of all tenants' requests, so one
worker's stream is the benches' stream: uniform over ``--tenants`` (``bench_spread.py``) or
Zipf of exponent ``--exponent`` over them (``bench_zipf.py``, s = 1.1 over 1,000).

    .venv/bin/python bench/lru_hit_rate.py [--tenants 1000] [--exponent 1.1] [--uniform]
        [--sizes 8,16,20,40,90] [--requests 200000]
"""

from __future__ import annotations

import argparse
import itertools
import random
from collections import OrderedDict


def hit_rate(size: int, weights: list[float], requests: int, seed: int = 1) -> float:
    rng = random.Random(seed)
    cumulative = list(itertools.accumulate(weights))
    tenants = range(len(weights))
    lru: OrderedDict[int, None] = OrderedDict()
    hits = 0
    for tenant in rng.choices(tenants, cum_weights=cumulative, k=requests):
        if tenant in lru:
            hits += 1
            lru.move_to_end(tenant)
        else:
            lru[tenant] = None
            if len(lru) > size:
                lru.popitem(last=False)
    return hits / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--exponent", type=float, default=1.1)
    parser.add_argument("--uniform", action="store_true")
    parser.add_argument("--sizes", default="8,16,20,40,90")
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    weights = ([1.0] * args.tenants if args.uniform
               else [1 / k ** args.exponent for k in range(1, args.tenants + 1)])
    law = "uniform" if args.uniform else f"Zipf s={args.exponent}"
    for size in (int(s) for s in args.sizes.split(",")):
        rate = hit_rate(size, weights, args.requests)
        print(f"{law} over {args.tenants} tenants, LRU of {size:>4}: hit rate {rate:6.1%}")


if __name__ == "__main__":
    main()
