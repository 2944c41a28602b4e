"""The serving benchmarks' connection budget: ``workers × (engines × pool + platform pool +
overflow)`` per configuration, checked against the server's ``max_connections`` before a
bench starts (``bench/serving.py`` re-exports both)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

PLATFORM_OVERFLOW = 2  # max_overflow of the platform engine (qalitel._platform_engine_options)
BENCH_CONNECTIONS = 2  # the sampler's and the bench's own admin connection


@dataclass(frozen=True)
class Budget:
    workers: int
    cache_size: int
    pool_size: int
    platform_pool_size: int = 2
    overflow: int = PLATFORM_OVERFLOW

    @classmethod
    def of(cls, args: argparse.Namespace, workers: int | None = None) -> Budget:
        return cls(workers or args.workers, args.cache_size, args.pool_size,
                   args.platform_pool_size)

    @property
    def per_worker(self) -> int:
        return self.cache_size * self.pool_size + self.platform_pool_size + self.overflow

    @property
    def total(self) -> int:
        return self.workers * self.per_worker

    def describe(self) -> str:
        return (f"{self.workers} workers × ({self.cache_size} engines × {self.pool_size} "
                f"+ platform {self.platform_pool_size}+{self.overflow}) = {self.total}")


def check_budget(pg_url: str, budgets: list[Budget], extra: int = 0) -> bool:
    """Print the budgets beside the server's connections; False when they do not fit."""
    from tenants import pg

    with pg.admin_connection(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_setting('max_connections')::int, "
                    "current_setting('superuser_reserved_connections')::int")
        max_connections, reserved = cur.fetchone()
    usable = max_connections - reserved - BENCH_CONNECTIONS
    wanted = sum(b.total for b in budgets) + extra
    for budget in budgets:
        print(f"budget: {budget.describe()}")
    print(f"server: max_connections {max_connections} − reserved {reserved} − bench "
          f"{BENCH_CONNECTIONS} = {usable} usable; wanted {wanted}", flush=True)
    if wanted > usable:
        print("configured budget does not fit the server; lower --cache-size, --pool-size "
              "or --workers")
        return False
    return True
