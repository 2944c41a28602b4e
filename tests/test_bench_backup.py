"""``bench/bench_backup.py`` runs end to end with tiny numbers on each backend and leaves
nothing behind (no timing is asserted: a benchmark's figures are read, not tested)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psycopg2

from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parent.parent


def test_bench_backup_runs_end_to_end_and_cleans_up(backend):
    done = subprocess.run(
        [sys.executable, "bench/bench_backup.py", "--backend", backend, "--tenants", "2",
         "--records", "5", "--files", "2", "--file-kb", "2", "--runs", "1",
         "--verify-runs", "1", "--budget", "4", "--pg-url", PG_URL],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for expected in ("backup run --all, first (2 workers)", "backup run --all, second",
                     "ratio to the plain loop", "backup restore bk0-",
                     "backup restore --as NEWSLUG",
                     "--deep", "cleanup: 2 tenants destroyed"):
        assert expected in out, out
    assert "FAILED" not in out
    if backend == "postgresql":
        assert re.search(r"peak connections .*: ok", out), out
    found = re.search(r"instance (\S+), name prefix (\S+),", out)
    assert found, out
    folder, prefix = Path(found.group(1)), found.group(2)
    assert not folder.exists()
    conn = psycopg2.connect(PG_URL, connect_timeout=10) if backend == "postgresql" else None
    if conn is not None:
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_database WHERE starts_with(datname, %s)",
                            (prefix,))
                databases = cur.fetchone()[0]
                cur.execute("SELECT count(*) FROM pg_roles WHERE starts_with(rolname, %s)",
                            (prefix,))
                roles = cur.fetchone()[0]
        finally:
            conn.close()
        assert (databases, roles) == (0, 0)


def test_bench_backup_refuses_bad_numbers():
    done = subprocess.run([sys.executable, "bench/bench_backup.py", "--tenants", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert "--tenants" in done.stderr
