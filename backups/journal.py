"""Names and journals of what a restore or a deep verification creates beside a tenant, so
that a process killed midway leaves leftovers :mod:`backups.sweep` can find and settle.

Every such run has a random ``token``. Its scratch PostgreSQL databases are named
``<prefix>bk_<kind>_<token>`` (slugs have no ``_``: never a tenant's database, and
``tenants.lifecycle.sweep`` leaves them alone); its SQLite files and file folders are the
tenant's name with ``.restoring-<token>`` or ``.pre-restore-<token>`` appended. A run is
alive while it holds two locks: ``flock`` on its journal file under the instance folder, and
a PostgreSQL advisory lock on the servers it works on. Both die with the process.

The journal (``instance/backup-journal/<token>.json``, written atomically) says what the
in-place restore meant to do: the tenant, its status before, the names it uses, and whether
the swap was committed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from psycopg2.extensions import connection as PgConnection

from core.config import Settings
from tenants import pg
from tenants.lifecycle import BACKUP_SCRATCH_INFIX as SCRATCH_INFIX

TOKEN = re.compile(r"^[0-9a-f]{12}$")


def scratch_database(settings: Settings, kind: str, token: str) -> str:
    """``kind`` is ``rst`` (a restore's staged copy), ``pre`` (the database a restore set
    aside) or ``verify`` (a deep verification's scratch copy)."""
    return f"{settings.pg_name_prefix}{SCRATCH_INFIX}{kind}_{token}"


def scratch_pattern(settings: Settings) -> re.Pattern[str]:
    return re.compile(re.escape(settings.pg_name_prefix + SCRATCH_INFIX)
                      + r"(rst|pre|verify)_([0-9a-f]{12})")


def lock_name(token: str) -> str:
    return f"qalitel-backup-scratch:{token}"


@contextlib.contextmanager
def held_on_server(admin: str, token: str) -> Iterator[PgConnection]:
    """Hold the run's advisory lock on a server (on an admin connection, yielded) for as
    long as its scratch databases may exist there."""
    with pg.admin_connection(admin) as conn, pg.advisory_lock(conn, lock_name(token)):
        yield conn


def free_on_server(conn: PgConnection, token: str) -> bool:
    """True when no live run holds ``token``'s lock on this server (checked, then let go)."""
    key = pg.lock_key(lock_name(token))
    with conn.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
        free = bool(cur.fetchone()[0])
        if free:
            cur.execute("SELECT pg_advisory_unlock(%s)", (key,))
    return free


@dataclass
class Plan:
    """What an in-place restore does to ``tenant_uid`` (names are full paths or database
    names; ``None`` where the backend has none)."""

    token: str
    tenant_uid: str
    backend: str
    status_before: str
    created: bool  # the tenant was made for this restore (``--as``): undone means destroyed
    had_files: bool
    files_live: str
    files_incoming: str
    files_previous: str
    db_live: str
    db_staged: str
    db_previous: str
    revision: str | None = None
    committed: bool = False
    notes: list[str] = field(default_factory=list)


def journal_dir(settings: Settings) -> Path:
    folder = settings.instance_dir / "backup-journal"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def save(settings: Settings, plan: Plan) -> None:
    """Write the journal atomically and durably (a reader sees the old or the new one)."""
    folder = journal_dir(settings)
    path = folder / f"{plan.token}.json"
    temp = folder / f".{plan.token}.json.tmp"
    with open(temp, "w") as handle:
        json.dump(asdict(plan), handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def alive(settings: Settings, token: str) -> Iterator[None]:
    """Mark the run ``token`` alive on this instance for the duration. A journal it saved
    and did not mark :func:`settled` is left for the sweep."""
    folder = journal_dir(settings)
    path = folder / f"{token}.lock"
    while True:  # the sweep may remove a free lock file: hold one that is still in place
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        (folder / f"{token}.lock").unlink(missing_ok=True)
        os.close(fd)


def is_alive(settings: Settings, token: str) -> bool:
    path = journal_dir(settings) / f"{token}.lock"
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def sweep_locks(settings: Settings) -> list[str]:
    """Remove the lock files of dead runs that left no journal (each removed while held)."""
    removed = []
    folder = journal_dir(settings)
    for path in sorted(folder.glob("*.lock")):
        if (folder / f"{path.stem}.json").exists():
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink(missing_ok=True)
            removed.append(path.name)
        except BlockingIOError:
            pass
        finally:
            os.close(fd)
    return removed


def dead_plans(settings: Settings) -> list[tuple[str, Plan | None]]:
    """Journals of runs that died (their lock is free), oldest first: each run's token and
    its plan (``None`` when the journal cannot be read)."""
    found: list[tuple[str, Plan | None]] = []
    for path in sorted(journal_dir(settings).glob("*.json"), key=lambda p: p.stat().st_mtime):
        token = path.stem
        if not TOKEN.fullmatch(token) or is_alive(settings, token):
            continue
        try:
            found.append((token, Plan(**json.loads(path.read_text()))))
        except (OSError, ValueError, TypeError):
            found.append((token, None))
    return found


def settled(settings: Settings, token: str) -> None:
    """The run put everything back itself: its journal has nothing left to say."""
    (journal_dir(settings) / f"{token}.json").unlink(missing_ok=True)


def has_journal(settings: Settings, token: str) -> bool:
    return (journal_dir(settings) / f"{token}.json").exists()


def forget(settings: Settings, token: str) -> None:
    folder = journal_dir(settings)
    for name in (f"{token}.json", f"{token}.lock", f".{token}.json.tmp"):
        (folder / name).unlink(missing_ok=True)
