"""The serving benchmarks (``bench/serving.py`` and the scripts on it) run end to end with
tiny numbers on PostgreSQL, print their figures, fail no request and leave nothing behind.
No timing is asserted: a benchmark's figures are read, not tested. One worker each, so the
in-memory throttle serves (several workers would need Redis)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from tests.conftest import PG_URL, require_postgres

ROOT = Path(__file__).resolve().parent.parent
PHASE_RE = re.compile(r"^phase (.+?): requests (\d+) in [\d.]+ s, failures (\d+), ([\d.]+) req/s, "
                      r"p50 [\d.]+ ms, p99 [\d.]+ ms$", re.MULTILINE)


def run_bench(*args: str) -> str:
    done = subprocess.run([sys.executable, *args, "--pg-url", PG_URL], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "failures: 0" in out, out
    assert not re.search(r"≤ (budget )?\d+: OVER", out), out  # connections, not time
    prefix = re.search(r"prefix (qtbs[0-9a-f]{4}_)", out)
    assert prefix, out
    assert re.search(r"cleanup: \d+ tenants destroyed", out), out
    conn = psycopg2.connect(PG_URL, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT (SELECT count(*) FROM pg_database WHERE starts_with(datname, %s))"
                        " + (SELECT count(*) FROM pg_roles WHERE starts_with(rolname, %s))",
                        (prefix.group(1), prefix.group(1)))
            assert cur.fetchone()[0] == 0
    finally:
        conn.close()
    return out


@pytest.fixture(autouse=True)
def _postgres():
    require_postgres()


def phases(out: str) -> dict[str, tuple[int, int]]:
    """Phase label → (requests, failures)."""
    return {m.group(1): (int(m.group(2)), int(m.group(3))) for m in PHASE_RE.finditer(out)}


def test_bench_cold_prints_cold_warm_and_evicted():
    out = run_bench("bench/bench_cold.py", "--tenants", "3", "--cache-size", "2",
                    "--threads", "2")
    for label in ("cold (first request)", "warm (second request)", "cold − warm",
                  "evicted (revisit)", "evicted − warm"):
        assert re.search(rf"{re.escape(label)}\s+median\s+-?[\d.]+ ms\s+p90", out), out
    found = phases(out)
    assert found["cold"] == (3, 0) and found["warm"] == (3, 0) and found["evicted"] == (3, 0)
    assert re.search(r"per worker \(/proc\) \[\d+\] ≤ 8: ok", out), out


def test_bench_warm_alternates_ours_and_floor():
    out = run_bench("bench/bench_warm.py", "--workers", "1", "--threads", "2", "--clients",
                    "2", "--requests", "12", "--rounds", "2", "--warmup", "2")
    assert "list page: status 200, 25 rows" in out, out
    found = phases(out)
    for label in ("ours #1", "floor #1", "ours #2", "floor #2"):
        assert found[label] == (12, 0), out
    assert re.search(r"^ratio ours / floor: [\d.]+ \(", out, re.MULTILINE), out


def test_bench_spread_and_profile_run():
    out = run_bench("bench/bench_spread.py", "--tenants", "3", "--warm-tenants", "1",
                    "--workers", "1", "--threads", "2", "--clients", "2", "--requests", "6",
                    "--rounds", "1", "--warmup", "2", "--cache-size", "2")
    assert phases(out)["spread-3 #1"] == (6, 0), out
    assert re.search(r"^ratio spread / warm: [\d.]+ \(", out, re.MULTILINE), out
    out = run_bench("bench/profile_request.py", "--tenants", "2", "--warm", "3", "--top", "5")
    for part in ("engine build", "connect", "identity check", "query execution",
                 "template render", "other"):
        assert re.search(rf"^  {part}\s+[\d.]+ ms", out, re.MULTILINE), out
    assert out.count("by cumulative time") == 2 and out.count("by own time") == 2


def test_a_budget_over_max_connections_is_refused():
    done = subprocess.run([sys.executable, "bench/bench_zipf.py", "--cache-size", "400",
                           "--pg-url", PG_URL], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "configured budget does not fit the server" in done.stdout
    assert "tenants:" not in done.stdout


def test_bench_backend_start_reads_the_new_and_the_warm_backends_cpu():
    out = run_bench("bench/bench_backend_start.py", "--tenants", "2", "--warm", "2")
    assert re.search(r"server backend CPU:\s+new backend\s+[\d.]+ ms\s+warm\s+[\d.]+ ms", out), out
