"""Run a command against a throwaway PostgreSQL cluster tuned for tests.

``python -m tests.pgcluster pytest -q`` (what ``make test`` does) creates a cluster with
``initdb`` (binaries from ``pg_config --bindir``, as user ``postgres`` through ``runuser``
when run as root), starts it on a free loopback port with ``fsync``, ``synchronous_commit``
and ``full_page_writes`` off — nothing in it has to survive a crash —, runs the command with
``QALITEL_TEST_PG_URL`` pointing at it, then stops the cluster and deletes it.

``QALITEL_TEST_PG_URL`` already set: the command runs against that server, no cluster.
No PostgreSQL binaries: the command runs against the default server (127.0.0.1:5432), and
under ``QALITEL_REQUIRE_POSTGRES=1`` the PostgreSQL tests fail if it does not answer. A cluster
that cannot start is an error, never a silent fallback.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

TUNING = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "autovacuum": "off",
    "max_connections": "200",
    "listen_addresses": "127.0.0.1",
}
SERVICE_USER = "postgres"
START_TIMEOUT_S = 120


class ClusterError(RuntimeError):
    """The test cluster could not be created or started."""


def bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are, or None without a PostgreSQL installation."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                               check=False).stdout.strip()
        if found and (Path(found) / "initdb").exists():
            return Path(found)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _scratch_root() -> str | None:
    """RAM-backed /dev/shm when it has room (a few GB), else the default temporary folder."""
    shm = Path("/dev/shm")
    try:
        if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2 << 30:
            return str(shm)
    except OSError:
        pass
    return None


def _as_service_user(command: list[str]) -> list[str]:
    """initdb refuses root: as root, run PostgreSQL's programs as ``postgres``."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", SERVICE_USER, "--", *command]


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(_as_service_user(command), capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise ClusterError(f"{what} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


@contextmanager
def cluster(binaries: Path) -> Iterator[str]:
    """A started throwaway cluster; yields its admin URL; stopped and deleted after."""
    root = Path(tempfile.mkdtemp(prefix="qalitel-test-pg-", dir=_scratch_root()))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        owner = pwd.getpwnam(SERVICE_USER)
        os.chown(root, owner.pw_uid, owner.pw_gid)
    started = False
    try:
        _run([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
              "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"], "initdb")
        port = _start(binaries, data, log, root)
        started = True
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _prepare(url)
        yield url
    finally:
        if started:
            _run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                  "stop"], "pg_ctl stop")
        shutil.rmtree(root, ignore_errors=True)


def _start(binaries: Path, data: Path, log: Path, root: Path) -> int:
    """Start the server on a free port; returns the port. Another process may take the port
    between the check and the server's bind: then try another one."""
    attempts = 5
    for attempt in range(1, attempts + 1):
        port = _free_port()
        options = " ".join(f"-c {name}={value}" for name, value in
                           {**TUNING, "port": str(port),
                            "unix_socket_directories": str(root)}.items())
        try:
            _run([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                  "-t", str(START_TIMEOUT_S), "-o", options, "start"], "pg_ctl start")
        except ClusterError:
            taken = log.exists() and "already in use" in log.read_text(errors="replace")
            if not taken or attempt == attempts:
                raise
            log.unlink()
        else:
            return port
    raise ClusterError("no free port")  # pragma: no cover - the loop returns or raises


def _prepare(url: str) -> None:
    """Create the role that owns every template's objects once, before parallel test
    processes would race to create it."""
    import psycopg2

    from tenants import pg

    conn = psycopg2.connect(url, connect_timeout=30)
    try:
        conn.autocommit = True
        pg.ensure_template_owner(conn)
    finally:
        conn.close()


def _run_command(command: Sequence[str], env: dict[str, str]) -> int:
    """Run the command; Ctrl-C and SIGTERM go to it, and the cluster is still cleaned up."""
    child = subprocess.Popen(list(command), env=env)

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str]) -> int:
    command = list(argv[1:] if argv[:1] == ["--"] else argv)
    if not command:
        print("usage: python -m tests.pgcluster COMMAND [ARGS...]", file=sys.stderr)
        return 2
    env = dict(os.environ)
    if env.get("QALITEL_TEST_PG_URL"):
        return _run_command(command, env)
    binaries = bindir()
    if binaries is None:
        print("tests.pgcluster: no PostgreSQL binaries (pg_config --bindir); the tests use "
              "the default server", file=sys.stderr)
        return _run_command(command, env)
    try:
        with cluster(binaries) as url:
            print(f"tests.pgcluster: test PostgreSQL at {url}", file=sys.stderr)
            return _run_command(command, {**env, "QALITEL_TEST_PG_URL": url})
    except ClusterError as exc:
        print(f"tests.pgcluster: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
