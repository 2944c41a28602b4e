"""Serving as the README says: `qalitel demo`, then `gunicorn -c gunicorn.conf.py wsgi:app`,
as real subprocesses on a free loopback port; the worker rule of the throttle; and the login
throttle holding across two gunicorn workers sharing Redis."""

from __future__ import annotations

import http.client
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from pathlib import Path

from tests.conftest import CSRF_RE, RUN

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REDIS_URL = "redis://127.0.0.1:6379/0"
READY_WITHIN_S = 120  # a bound, not an expectation: readiness is polled


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(instance: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QALITEL_")}
    env.update(QALITEL_INSTANCE_DIR=str(instance), **extra)
    return env


def prepare_demo(env: dict[str, str]) -> str:
    done = subprocess.run([str(BIN / "qalitel"), "demo"], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def gunicorn_command(port: int, *flags: str, app: str = "wsgi:app") -> list[str]:
    """The README's serving command, on ``port``."""
    return [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}",
            *flags, app]


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int) -> Iterator[Browser]:
    """Start gunicorn, wait until /healthz answers (polling, bounded), stop it at the end."""
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=log, text=True)

    def errors() -> str:
        log.seek(0)
        return log.read()[-4000:]

    try:
        deadline = time.monotonic() + READY_WITHIN_S
        while True:
            assert process.poll() is None, f"gunicorn exited: {errors()}"
            if ready(port):
                break
            assert time.monotonic() < deadline, f"no answer on /healthz: {errors()}"
            time.sleep(0.1)
        yield Browser(port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class Browser:
    """Cookies and CSRF token over real HTTP, a new connection per request; answers are
    (status, text)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        headers = {"Accept-Language": "en", "Connection": "close"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            answer = connection.getresponse()
            for header in answer.headers.get_all("Set-Cookie") or []:
                jar = SimpleCookie()
                jar.load(header)
                for name, morsel in jar.items():
                    self.cookies[name] = morsel.value
            return answer.status, answer.read().decode()
        finally:
            connection.close()

    def get(self, path: str) -> tuple[int, str]:
        return self.request("GET", path)

    def post(self, path: str, form: dict[str, str]) -> tuple[int, str]:
        return self.request("POST", path, urllib.parse.urlencode(form))


def ready(port: int) -> bool:
    try:
        return Browser(port).get("/healthz")[0] == 200
    except OSError:
        return False


def test_the_readme_serving_command_serves_the_demo(tmp_path):
    env = environment(tmp_path / "instance")
    output = prepare_demo(env)
    password = re.search(r"client admin\s+admin@demo.example\s+(\S+)", output).group(1)
    port = free_port()
    with serving(gunicorn_command(port), env, port) as browser:
        status, page = browser.get("/t/demo/login")
        assert status == 200 and 'name="password"' in page
        token = CSRF_RE.search(page).group(1)
        status, _ = browser.post("/t/demo/login", {
            "email": "admin@demo.example", "password": password, "csrf_token": token})
        assert status == 302
        status, listing = browser.get("/t/demo/records/?per_page=50")
        assert status == 200 and "40 non-conformities" in listing


def test_several_workers_on_memory_storage_are_refused(tmp_path):
    """With memory:// each worker counted on its own: `-w 2` let twice the documented
    attempts through. gunicorn now refuses to start, saying why and what to do."""
    env = environment(tmp_path / "instance")
    done = subprocess.run(gunicorn_command(free_port(), "-w", "2"), cwd=ROOT, env=env,
                          text=True, capture_output=True, timeout=120)
    assert done.returncode != 0
    assert "2 workers with QALITEL_RATELIMIT_STORAGE_URI=memory://" in done.stderr
    assert "QALITEL_RATELIMIT_STORAGE_URI=redis://" in done.stderr


def worker_pids(access_log: Path, count: int) -> list[str]:
    """Pids of the workers that answered the first ``count`` POSTs (waits for the lines)."""
    deadline = time.monotonic() + READY_WITHIN_S
    while True:
        lines = [line.split() for line in access_log.read_text().splitlines()]
        posts = [fields[0] for fields in lines if len(fields) == 3 and fields[1] == "POST"]
        if len(posts) >= count:
            return posts[:count]
        assert time.monotonic() < deadline, f"{len(posts)} of {count} POSTs logged"
        time.sleep(0.05)


def test_two_workers_on_redis_allow_exactly_the_documented_attempts(tmp_path):
    import redis

    connection = redis.Redis.from_url(REDIS_URL)
    connection.ping()
    prefix = f"qtt{RUN}-serve-{secrets.token_hex(4)}"
    env = environment(tmp_path / "instance", QALITEL_RATELIMIT_STORAGE_URI=REDIS_URL,
                      QALITEL_RATELIMIT_KEY_PREFIX=prefix)
    output = prepare_demo(env)
    password = re.search(r"client user\s+user@demo.example\s+(\S+)", output).group(1)
    port = free_port()
    access_log = tmp_path / "access.log"
    # A day-long window, so that the count cannot roll over while the test runs.
    app = 'qalitel:create_app({"extra": {"LOGIN_LIMIT_PER_ACCOUNT_ADDRESS": "5 per day"}})'
    command = gunicorn_command(port, "-w", "2", "--access-logfile", str(access_log),
                               "--access-logformat", "%(p)s %(m)s %(s)s", app=app)
    try:
        with serving(command, env, port) as browser:
            token = CSRF_RE.search(browser.get("/t/demo/login")[1]).group(1)

            def attempt(secret: str) -> int:
                return browser.post("/t/demo/login", {"email": "user@demo.example",
                                                      "password": secret,
                                                      "csrf_token": token})[0]

            assert [attempt("wrong") for _ in range(5)] == [401] * 5
            statuses = [attempt(password)]  # the right password waits too, by design
            # keep asking until both workers have answered a throttled attempt (bounded)
            while len(set(worker_pids(access_log, 6 + len(statuses) - 1)[5:])) < 2:
                assert len(statuses) < 200, "one worker answered every request"
                statuses.append(attempt("wrong"))
            assert set(statuses) == {429}
            pids = worker_pids(access_log, 5 + len(statuses))
            assert len(set(pids)) == 2
    finally:
        for key in connection.scan_iter(match=f"{prefix}:*"):
            connection.delete(key)
        connection.close()
