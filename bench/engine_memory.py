"""Memory of tenant engines, to size ``QALITEL_ENGINE_CACHE_SIZE`` and
``QALITEL_DORMANT_ENGINE_CACHE_SIZE`` by measurement.

Provisions N tenants (throwaway instance folder, unique PostgreSQL prefix), then measures in
this process, with ``tracemalloc`` (Python allocations) and RSS (``/proc/self/status``):

* an **idle** engine: built by the engine cache (shared dialect and compiled cache), never
  connected;
* one **connection** more per engine (the identity check and a query run on it);
* a **dormant** engine: connected once, evicted (its pool drained), kept without connection;
* for comparison, an engine with a dialect and compiled cache of its own (what every engine
  was before ``tenants/dialects.py``), connected once and drained;

and, on PostgreSQL when the server is local, the private memory of one server backend per
connection (``/proc/<pid>/smaps_rollup``). Everything it made is dropped at the end.

    .venv/bin/python bench/engine_memory.py [-n 100] [--backend postgresql|sqlite]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import secrets
import shlex
import sys
import tempfile
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_PG = os.environ.get("QALITEL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "engine-memory-bench-1"


def rss_kb(pid: str = "self") -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1])
    return 0


def private_kb(pid: int) -> int | None:
    """Private (not shared) memory of a process, or None when it cannot be read."""
    try:
        rows = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return None
    kinds = ("Private_Clean:", "Private_Dirty:")
    return sum(int(r.split()[1]) for r in rows if r.startswith(kinds))


class Meter:
    """Python allocations (tracemalloc) and RSS since the last ``mark``."""

    def __init__(self) -> None:
        tracemalloc.start()
        self.mark()

    def mark(self) -> None:
        gc.collect()
        self.py, self.rss = tracemalloc.get_traced_memory()[0], rss_kb()

    def since(self, count: int) -> tuple[float, float]:
        gc.collect()
        py, rss = tracemalloc.get_traced_memory()[0], rss_kb()
        return (py - self.py) / 1024 / count, (rss - self.rss) / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    args = parser.parse_args()
    print("$", shlex.join([sys.executable, *sys.argv]), flush=True)
    from sqlalchemy import text
    from werkzeug.security import generate_password_hash

    from qalitel import create_app
    from tenants import pg
    from tenants.engines import EngineCache, TenantInfo, build_engine
    from tenants.provisioning import create_tenant

    prefix = f"qem{secrets.token_hex(3)}_"
    folder = Path(tempfile.mkdtemp(prefix="qalitel-engine-memory-"))
    app = create_app({"instance_dir": folder / "instance", "secret_key": "x" * 32,
                      "external_url": "http://localhost", "pg_name_prefix": prefix,
                      "template_database": f"{prefix}template",
                      "tenant_server_url": DEFAULT_PG if args.backend == "postgresql" else ""})
    settings = app.extensions["qalitel_settings"]
    hashed = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    try:
        with app.app_context():
            from tenants.service import init_platform

            init_platform()
            infos = [TenantInfo.from_row(create_tenant(
                settings, f"m{i}x", f"Memory {i}", f"a@m{i}x.example", PASSWORD,
                backend=args.backend, password_hash=hashed).tenant) for i in range(args.n + 1)]
            warm, infos = infos[0], infos[1:]
            n = len(infos)
            big = EngineCache(dataclasses.replace(settings, engine_cache_size=n + 1,
                                                  dormant_engine_cache_size=0))

            def query(engine) -> None:
                with engine.connect() as conn:
                    conn.execute(text("SELECT count(*) FROM tenant_identity")).scalar()

            with big.lease(warm) as engine:  # the kit: dialect initialised, SQL compiled
                query(engine)
            meter = Meter()
            leases = [big.lease(info) for info in infos]
            engines = [lease.__enter__() for lease in leases]
            idle = meter.since(n)
            meter.mark()
            for engine in engines:
                query(engine)
            connection = meter.since(n)
            backends = []
            if args.backend == "postgresql":
                with pg.admin_connection(DEFAULT_PG) as conn, conn.cursor() as cur:
                    cur.execute("SELECT pid FROM pg_stat_activity WHERE usename LIKE %s",
                                (prefix + "%",))
                    backends = [v for (pid,) in cur.fetchall()
                                if (v := private_kb(pid)) is not None]
            for lease in leases:
                lease.__exit__(None, None, None)
            del engines, leases
            big.clear()
            meter.mark()
            small = EngineCache(dataclasses.replace(settings, engine_cache_size=1,
                                                    dormant_engine_cache_size=n + 1))
            small.kits = big.kits
            for info in [*infos, warm]:
                with small.lease(info) as engine:
                    query(engine)
            dormant = meter.since(n)
            assert small.dormant == n and small.checked_out() == 1
            small.clear()
            big.kits.clear()
            meter.mark()
            own = [build_engine(info, settings) for info in infos]  # a dialect each
            for engine in own:
                query(engine)
                engine.dispose()
            unshared = meter.since(n)
            del own
    finally:
        with app.app_context():
            from core.db import db

            db.session.remove()
            db.engine.dispose()
        if args.backend == "postgresql":
            pg.drop_prefixed(DEFAULT_PG, prefix)
    print(f"{args.backend}, {n} engines (Python allocations by tracemalloc / RSS delta):")
    for label, (py, rss) in (("idle engine (no connection)", idle),
                             ("+ one connection, per engine", connection),
                             ("dormant engine (pool drained)", dormant),
                             ("unshared engine, connected once", unshared)):
        print(f"  {label:<32} {py:8.1f} KiB Python   {rss:8.1f} KiB RSS")
    if backends:
        backends.sort()
        print(f"  server backend per connection    {backends[len(backends) // 2]:8.0f} KiB "
              f"private (median of {len(backends)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
