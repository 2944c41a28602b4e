"""What ``bench_backup.py`` measures against: tenants filled with records and files, and the
plain copies (``pg_dump --format=custom``, SQLite's backup API) it compares the app with.

Records go in bulk through the tenant session (as ``bench_record_list.py`` does); files go
through ``core.filestore`` and the ``attachments`` table, as an upload would leave them.
"""

from __future__ import annotations

import io
import os
import random
import resource
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WORDS = ("leak", "scratch", "burr", "crack", "label", "torque", "seal", "gasket", "weld",
         "paint", "dimension", "supplier", "audit", "customer", "batch", "line", "press",
         "drill", "calibration", "training", "document", "procedure", "deviation")


def populate(app, slug: str, backend: str, records: int, files: int, file_bytes: int,
             password_hash: str, seed: int) -> None:
    """Provision ``slug`` and give it ``records`` non-conformities and ``files`` attached
    files of ``file_bytes`` each (random bytes behind a PNG signature)."""
    from sqlalchemy import insert, select

    from core.filestore import FileStore
    from qalitel.records.files.models import Attachment
    from qalitel.records.models import NonConformity
    from qalitel.users.models import User
    from tenants.context import tdb, tenant_context
    from tenants.engines import TenantInfo
    from tenants.provisioning import create_tenant

    rng = random.Random(seed)
    settings = app.extensions["qalitel_settings"]
    with app.app_context():
        made = create_tenant(settings, slug, f"Bench {slug}", f"admin@{slug}.example",
                             backend=backend, password_hash=password_hash)
        with tenant_context(TenantInfo.from_row(made.tenant)):
            admin = tdb.execute(select(User.id)).scalars().first()
            start = datetime.now(UTC) - timedelta(days=365)
            rows = [record_values(n, admin, rng, start) for n in range(1, records + 1)]
            for chunk in range(0, len(rows), 2000):
                tdb.execute(insert(NonConformity), rows[chunk:chunk + 2000])
            first = tdb.execute(select(NonConformity.id).order_by(NonConformity.id)
                                .limit(max(1, files))).scalars().all()
            store = FileStore.for_tenant(settings, made.tenant.uid)
            for i in range(files if first else 0):
                body = PNG_MAGIC + rng.randbytes(max(0, file_bytes - len(PNG_MAGIC)))
                staged = store.stage(io.BytesIO(body), settings.file_max_bytes)
                store.commit(staged)
                tdb.add(Attachment(record_id=first[i % len(first)], name=f"photo-{i}.png",
                                   size=staged.size, sha256=staged.sha256, kind="png",
                                   content_type="image/png", uploaded_by_id=admin))
            tdb.commit()


def record_values(n: int, author: int, rng: random.Random, start: datetime) -> dict:
    """The columns of the ``n``-th bench non-conformity (bulk inserts), by ``author``."""
    from qalitel.records.models import ORIGINS, SEVERITIES, STATUSES

    created = start + timedelta(minutes=n * 17)
    return {"number": n, "title": f"Non-conformity {n}: {rng.choice(WORDS)} {rng.choice(WORDS)}",
            "description": " ".join(rng.choices(WORDS, k=30)), "status": rng.choice(STATUSES),
            "detected_on": created.date(), "detected_by_id": author, "created_by_id": author,
            "origin": rng.choice(ORIGINS), "severity": rng.choice(SEVERITIES),
            "cause_analysis": "", "created_at": created, "updated_at": created}


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished children (the tools)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    tools = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + tools.ru_utime + tools.ru_stime


def server_cpu(admin_dsn: str) -> Callable[[], float | None]:
    """A reader of the PostgreSQL server's CPU time (the postmaster's reaped children: every
    backend that has exited), or of None when the server is not local and readable."""
    import psycopg2

    try:
        conn = psycopg2.connect(admin_dsn, connect_timeout=10)
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW data_directory")
                folder = Path(cur.fetchone()[0])
        finally:
            conn.close()
        pid = int((folder / "postmaster.pid").read_text().split()[0])
        stat = Path(f"/proc/{pid}/stat")
        stat.read_text()
    except (OSError, ValueError, psycopg2.Error):
        return lambda: None
    tick = os.sysconf("SC_CLK_TCK")

    def read() -> float | None:
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime

    return read


@dataclass
class PlainRun:
    seconds: float
    bytes: int
    count: int
    cpu: float
    server: float | None = None


def plain_loop(sources: list, copy: Callable[[object, Path], None], folder: Path,
               jobs: int, server: Callable[[], float | None]) -> PlainRun:
    """Copy every source into ``folder`` with ``jobs`` threads; the time and bytes written."""
    folder.mkdir(parents=True)

    def one(indexed: tuple[int, object]) -> int:
        index, source = indexed
        out = folder / f"{index:05d}.copy"
        copy(source, out)
        return out.stat().st_size

    started, cpu, before = time.perf_counter(), cpu_seconds(), server()
    if jobs <= 1:
        sizes = [one(item) for item in enumerate(sources)]
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            sizes = list(pool.map(one, enumerate(sources)))
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    return PlainRun(elapsed, sum(sizes), len(sizes), cpu, server_delta(server, before))


def server_delta(server: Callable[[], float | None], before: float | None) -> float | None:
    """Server CPU since ``before``, once the backends just closed are reaped (a moment)."""
    if before is None:
        return None
    time.sleep(0.3)
    after = server()
    return None if after is None else after - before


def pg_dump_copier(pg_dump: str, admin_env: dict[str, str]) -> Callable[[object, Path], None]:
    """``pg_dump --format=custom`` of a database (its name), as the admin role."""
    def copy(database: object, out: Path) -> None:
        subprocess.run([pg_dump, "--format=custom", "--no-password", f"--file={out}",
                        f"--dbname={database}"], env=admin_env, stdin=subprocess.DEVNULL,
                       capture_output=True, check=True)
    return copy


def sqlite_copier(source: object, out: Path) -> None:
    """SQLite's online backup API, from a read-only connection, as the app reads."""
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    writer = sqlite3.connect(out)
    try:
        reader.backup(writer)
    finally:
        writer.close()
        reader.close()


@dataclass
class Peaks:
    tenant: int = 0
    platform: int = 0
    total: int = 0
    samples: int = 0
    stop: threading.Event = field(default_factory=threading.Event)


def sample_connections(admin_dsn: str, prefix: str, platform_db: str, peaks: Peaks) -> None:
    """Poll ``pg_stat_activity`` until ``peaks.stop``: connections of this run's tenant roles
    and to its platform database (the sampler's own connection is to neither)."""
    import psycopg2

    conn = psycopg2.connect(admin_dsn, connect_timeout=10)
    conn.autocommit = True
    try:
        while not peaks.stop.is_set():
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FILTER (WHERE starts_with(usename, %s) "
                            "AND datname <> %s), count(*) FILTER (WHERE datname = %s) "
                            "FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
                            (prefix, platform_db, platform_db))
                tenant, platform = cur.fetchone()
            peaks.tenant = max(peaks.tenant, tenant)
            peaks.platform = max(peaks.platform, platform)
            peaks.total = max(peaks.total, tenant + platform)
            peaks.samples += 1
            peaks.stop.wait(0.02)
    finally:
        conn.close()


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def durable_copier(copy: Callable[[object, Path], None],
                   recipient: str) -> Callable[[object, Path], None]:
    """``copy``, then what any backup worth the name adds and the bare loop skips: the copy
    age-encrypted (``pyrage``) and written to two folders beside ``out``, each under a
    temporary name, fsynced, renamed and its folder fsynced. No tar, files, checks or
    catalogue: the floor of a durable, encrypted, two-media backup of the same databases."""
    import pyrage

    to = [pyrage.x25519.Recipient.from_str(recipient)]

    def durable(source: object, out: Path) -> None:
        raw = out.with_suffix(".raw")
        copy(source, raw)
        with open(raw, "rb") as reader, open(out, "wb") as writer:
            pyrage.encrypt_io(reader, writer, to)
        raw.unlink()
        for medium in ("medium-1", "medium-2"):
            folder = out.parent / medium
            folder.mkdir(exist_ok=True)
            temp = folder / f".{out.name}.partial"
            with open(out, "rb") as reader, open(temp, "wb") as writer:
                while chunk := reader.read(1 << 20):
                    writer.write(chunk)
                writer.flush()
                os.fsync(writer.fileno())
            os.replace(temp, folder / out.name)
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    return durable
