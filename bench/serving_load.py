"""The serving benchmarks' HTTP side: signed-in sessions, load phases, connection peaks.

A *phase* sends ``requests`` GETs from ``clients`` threads, each request to the tenant a
*chooser* draws (``chooser(rng) -> slug``), through the one signed-in session of that tenant
(shared by the clients, as tabs of one browser). While it runs a thread samples
``pg_stat_activity`` (this run's tenant roles and platform database) and each gunicorn
worker's established sockets to PostgreSQL (``/proc``, exact on the client side). Time is
never asserted: :func:`summary` prints, the caller's exit status counts failed requests and
workers over their budget.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import statistics
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import bench_provision
from bench.serving import PASSWORD, Budget, Server, World, children

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
Chooser = Callable[[random.Random], str]


def records_path(slug: str) -> str:
    """The non-conformity list, first page (25 rows by default)."""
    return f"/t/{slug}/records/"


class Session:
    """One signed-in browser at one tenant: cookies, over plain http.client."""

    def __init__(self, port: int, slug: str) -> None:
        self.port = port
        self.slug = slug
        self.cookies: dict[str, str] = {}
        self.lock = threading.Lock()

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            headers = {"Host": f"127.0.0.1:{self.port}", "Accept-Language": "en"}
            with self.lock:
                if self.cookies:
                    headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            body = None
            if form is not None:
                body = urllib.parse.urlencode(form)
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            with self.lock:
                for name, value in response.getheaders():
                    if name.lower() == "set-cookie":
                        key, _, val = value.split(";", 1)[0].partition("=")
                        if val and "max-age=0" not in value.lower():
                            self.cookies[key.strip()] = val
                        else:
                            self.cookies.pop(key.strip(), None)
            return response.status, text
        finally:
            conn.close()

    def login(self) -> bool:
        status, page = self.request("GET", f"/t/{self.slug}/login")
        match = CSRF_RE.search(page)
        if status != 200 or not match:
            return False
        status, _ = self.request("POST", f"/t/{self.slug}/login", {
            "email": f"admin@{self.slug}.example", "password": PASSWORD,
            "csrf_token": match.group(1)})
        return status == 302


def sign_in(port: int, slugs: list[str], clients: int) -> tuple[dict[str, Session], list[str]]:
    """One signed-in session per tenant (``clients`` threads sign in); and the failures."""
    sessions = {slug: Session(port, slug) for slug in slugs}
    failures: list[str] = []
    todo = iter(slugs)
    lock = threading.Lock()

    def run() -> None:
        while True:
            with lock:
                slug = next(todo, None)
            if slug is None:
                return
            try:
                ok = sessions[slug].login()
            except Exception as exc:
                ok, slug = False, f"{slug}: {exc!r}"
            if not ok:
                with lock:
                    failures.append(f"login {slug}")

    started = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(max(1, min(clients, len(slugs))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"signed in at {len(slugs)} tenants in {time.perf_counter() - started:.1f} s, "
          f"{len(failures)} failures", flush=True)
    return sessions, failures


# ---------------------------------------------------------------- connection sampling


def pg_sockets_per_process(pids: list[int], port: int) -> dict[int, int]:
    """Established TCP connections to ``port`` held by each process (Linux ``/proc``)."""
    inodes: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            continue
    counts = dict.fromkeys(pids, 0)
    wanted = f"{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "01" and parts[2].rsplit(":", 1)[1] == wanted and parts[9] in inodes:
                counts[inodes[parts[9]]] += 1
    return counts


@dataclass
class Peaks:
    tenant: int = 0
    platform: int = 0
    total: int = 0
    per_worker: dict[int, int] = field(default_factory=dict)
    samples: int = 0


def sample(world: World, master: int, stop: threading.Event, peaks: Peaks) -> None:
    from sqlalchemy import make_url

    from tenants import pg

    port = make_url(world.pg_url).port or 5432
    with pg.admin_connection(world.pg_url) as conn:
        while not stop.is_set():
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FILTER (WHERE starts_with(usename, %s) "
                            "AND datname <> %s), count(*) FILTER (WHERE datname = %s) "
                            "FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
                            (world.prefix, world.platform_db, world.platform_db))
                tenant, platform = cur.fetchone()
            peaks.tenant = max(peaks.tenant, tenant)
            peaks.platform = max(peaks.platform, platform)
            peaks.total = max(peaks.total, tenant + platform)
            for pid, count in pg_sockets_per_process(children(master), port).items():
                peaks.per_worker[pid] = max(peaks.per_worker.get(pid, 0), count)
            peaks.samples += 1
            stop.wait(0.05)


# ---------------------------------------------------------------- load


@dataclass
class Phase:
    label: str
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    peaks: Peaks = field(default_factory=Peaks)
    budget: Budget | None = None

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def over_budget(self) -> bool:
        """A worker held more sockets to PostgreSQL than its budget (client side, exact)."""
        worst = max(self.peaks.per_worker.values(), default=0)
        return self.budget is not None and worst > self.budget.per_worker


def run_phase(label: str, server: Server, sessions: dict[str, Session], chooser: Chooser,
              requests: int, clients: int, max_seconds: float, seed: int,
              path: Callable[[str], str] = records_path,
              total_budget: int | None = None) -> Phase:
    """``requests`` GETs of ``path(chooser(rng))`` from ``clients`` threads, sampled."""
    phase = Phase(label, budget=server.budget)
    lock = threading.Lock()
    sent = 0
    deadline = time.monotonic() + max_seconds

    def client(index: int) -> None:
        nonlocal sent
        rng = random.Random(seed * 1000 + index)
        while time.monotonic() < deadline:
            with lock:
                if sent >= requests:
                    return
                sent += 1
            session = sessions[chooser(rng)]
            started = time.perf_counter()
            try:
                status, _ = session.request("GET", path(session.slug))
                failure = None if status == 200 else f"GET {session.slug}: {status}"
            except Exception as exc:
                failure = f"GET {session.slug}: {exc!r}"
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                phase.latencies.append(elapsed)
                if failure:
                    phase.failures.append(failure)

    stop = threading.Event()
    watcher = threading.Thread(target=sample, args=(server.world, server.pid, stop,
                                                    phase.peaks))
    watcher.start()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phase.elapsed = time.perf_counter() - started
    stop.set()
    watcher.join()
    report(phase, server, total_budget)
    return phase


@dataclass
class Arm:
    """One side of a comparison: phases of ``chooser`` on ``server`` through ``sessions``;
    ``warm_up``: an unmeasured ``(warm-up)`` phase before each measured one."""

    label: str
    server: Server
    sessions: dict[str, Session]
    chooser: Chooser
    warm_up: bool = True


def alternate(arms: list[Arm], rounds: int, requests: int, warmup: int, clients: int,
              max_seconds: float, total_budget: int | None = None) -> list[Phase]:
    """A/B/A/B…: every arm's phase in turn, ``rounds`` times, in one run."""
    phases: list[Phase] = []
    for r in range(rounds):
        for i, arm in enumerate(arms):
            seed = 1000 * r + 10 * i
            if arm.warm_up and warmup:
                phases.append(run_phase("(warm-up)", arm.server, arm.sessions, arm.chooser,
                                        warmup, clients, max_seconds, seed + 1,
                                        total_budget=total_budget))
            phases.append(run_phase(f"{arm.label} #{r + 1}", arm.server, arm.sessions,
                                    arm.chooser, requests, clients, max_seconds, seed,
                                    total_budget=total_budget))
    return phases


def compare(arms: list[Arm], args, name: str, target: float, extra_failures: list[str],
            total_budget: int | None = None) -> int:
    """Alternate the arms' phases (``args``: rounds, requests, warmup, clients,
    max_seconds), print the ratio first arm / second arm; the failures."""
    phases = alternate(arms, args.rounds, args.requests, args.warmup, args.clients,
                       args.max_seconds, total_budget)
    summary(name, phases, arms[0].label, arms[1].label, target)
    return failed(phases, extra_failures)


def pct(values: list[float], q: float) -> float:
    return bench_provision.pct(values, q) if values else float("nan")


def report(phase: Phase, server: Server, total_budget: int | None = None) -> None:
    peaks, budget = phase.peaks, server.budget
    total_budget = total_budget or budget.total
    worst = max(peaks.per_worker.values(), default=0)
    print(f"phase {phase.label}: requests {len(phase.latencies)} in {phase.elapsed:.1f} s, "
          f"failures {len(phase.failures)}"
          + (f" e.g. {phase.failures[:3]}" if phase.failures else "")
          + f", {phase.rate:.1f} req/s, p50 {pct(phase.latencies, 0.5):.1f} ms, "
          f"p99 {pct(phase.latencies, 0.99):.1f} ms", flush=True)
    print(f"  peak connections (pg_stat_activity, {peaks.samples} samples): tenant "
          f"{peaks.tenant} + platform {peaks.platform} = {peaks.total} ≤ budget "
          f"{total_budget}: {'ok' if peaks.total <= total_budget else 'OVER'}; per worker "
          f"(/proc) {list(peaks.per_worker.values())} ≤ {budget.per_worker}: "
          f"{'ok' if worst <= budget.per_worker else 'OVER'}", flush=True)


def summary(name: str, phases: list[Phase], ours: str, base: str, target: float) -> float:
    """Print the ratio of req/s, median of ``ours`` phases over median of ``base`` phases."""
    a = statistics.median(p.rate for p in phases if p.label.startswith(ours + " #"))
    b = statistics.median(p.rate for p in phases if p.label.startswith(base + " #"))
    ratio = a / b if b else float("nan")
    verdict = "met" if ratio >= target else "not met"
    print(f"\nratio {name}: {ratio:.2f} ({ours} {a:.1f} req/s / {base} {b:.1f} req/s, medians; "
          f"target ≥ {target}: {verdict})")
    return ratio


def failed(phases: list[Phase], extra: list[str] = ()) -> int:
    """Failed requests plus phases over budget (the exit status is 1 when not 0)."""
    count = sum(len(p.failures) for p in phases) + len(extra)
    count += sum(p.over_budget() for p in phases)
    print(f"failures: {count}")
    print("load after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    return count
