"""Sign-in and reset throttling (Flask-Limiter): per account, per address, memory and Redis."""

from __future__ import annotations

import secrets

import pytest

from tests.conftest import RUN, csrf_token, login, provision

pytestmark = pytest.mark.usefixtures("english_clients")


def throttled_app(make_app, backend, password_hash, **limits):
    app = make_app(backend, extra={"LOGIN_LIMIT_PER_ACCOUNT": "1000 per hour",
                                   "LOGIN_LIMIT_PER_ADDRESS": "1000 per hour", **limits})
    provision(app, "alpha", password_hash)
    provision(app, "bravo", password_hash)
    return app


def from_address(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_failures_per_account_are_throttled(make_app, backend, password_hash):
    app = throttled_app(make_app, backend, password_hash, LOGIN_LIMIT_PER_ACCOUNT="3 per minute")
    client = app.test_client()
    for _ in range(3):
        assert login(client, "alpha", "user@alpha.example", "wrong").status_code == 401
    blocked = login(client, "alpha", "user@alpha.example")  # even the right password waits
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)
    assert int(blocked.headers["Retry-After"]) > 0
    # from another address too: the account is what is limited
    assert login(from_address(app, "10.1.1.1"), "alpha", "user@alpha.example").status_code == 429
    # other accounts, and the same email at another tenant, are not affected
    assert login(client, "alpha", "admin@alpha.example").status_code == 302
    assert login(app.test_client(), "bravo", "user@bravo.example").status_code == 302
    # the sign-in page itself still answers
    assert app.test_client().get("/t/alpha/login").status_code == 200


def test_unknown_and_known_accounts_are_throttled_alike(make_app, backend, password_hash):
    app = throttled_app(make_app, backend, password_hash, LOGIN_LIMIT_PER_ACCOUNT="2 per minute")
    client = app.test_client()
    statuses = {}
    for email in ("user@alpha.example", "ghost@alpha.example"):
        statuses[email] = [login(client, "alpha", email, "wrong").status_code for _ in range(3)]
    assert statuses["user@alpha.example"] == statuses["ghost@alpha.example"] == [401, 401, 429]


def test_failures_per_address_are_throttled(make_app, backend, password_hash):
    app = throttled_app(make_app, backend, password_hash, LOGIN_LIMIT_PER_ADDRESS="4 per minute")
    attacker = from_address(app, "10.6.6.6")
    for i in range(4):
        assert login(attacker, "alpha", f"guess{i}@alpha.example", "x").status_code == 401
    assert login(attacker, "alpha", "user@alpha.example").status_code == 429
    assert login(attacker, "bravo", "user@bravo.example").status_code == 429  # any tenant
    assert login(from_address(app, "10.7.7.7"), "alpha",
                 "user@alpha.example").status_code == 302


def test_successful_sign_ins_do_not_count(make_app, backend, password_hash):
    app = throttled_app(make_app, backend, password_hash, LOGIN_LIMIT_PER_ACCOUNT="2 per minute",
                        LOGIN_LIMIT_PER_ADDRESS="2 per minute")
    for _ in range(4):
        assert login(app.test_client(), "alpha", "user@alpha.example").status_code == 302


def test_reset_requests_are_throttled_without_revealing_accounts(make_app, backend,
                                                                password_hash):
    app = throttled_app(make_app, backend, password_hash, RESET_LIMIT_PER_ACCOUNT="2 per hour",
                        RESET_LIMIT_PER_ADDRESS="8 per hour")

    def ask(who, email: str) -> int:
        token = csrf_token(who, "/t/alpha/password/forgot")
        return who.post("/t/alpha/password/forgot",
                        data={"email": email, "csrf_token": token}).status_code

    for address, email in (("10.3.0.1", "user@alpha.example"), ("10.3.0.2", "ghost@alpha.example")):
        client = from_address(app, address)
        assert [ask(client, email) for _ in range(3)] == [302, 302, 429], email
    client = from_address(app, "10.3.0.3")
    assert [ask(client, f"n{i}@alpha.example") for i in range(8)] == [302] * 8
    assert ask(client, "admin@alpha.example") == 429
    assert ask(from_address(app, "10.3.0.4"), "admin@alpha.example") == 302


def test_password_change_failures_are_throttled(make_app, backend, password_hash):
    app = throttled_app(make_app, backend, password_hash, PASSWORD_LIMIT_PER_USER="2 per minute")
    client = app.test_client()
    login(client, "alpha", "user@alpha.example")
    for expected in (400, 400, 429):
        token = csrf_token(client, "/t/alpha/profile")
        response = client.post("/t/alpha/profile/password", data={
            "csrf_token": token, "current": "guess", "password": "new password!",
            "confirm": "new password!"})
        assert response.status_code == expected


def test_throttling_with_redis_storage(make_app, backend, password_hash):
    import redis

    connection = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    connection.ping()  # Redis is part of this project's test environment
    prefix = f"qtt{RUN}-{secrets.token_hex(4)}"
    try:
        app = make_app(backend, ratelimit_storage_uri="redis://127.0.0.1:6379/0",
                       extra={"RATELIMIT_KEY_PREFIX": prefix,
                              "LOGIN_LIMIT_PER_ACCOUNT": "2 per minute"})
        provision(app, "alpha", password_hash)
        client = app.test_client()
        statuses = [login(client, "alpha", "user@alpha.example", "wrong").status_code
                    for _ in range(3)]
        assert statuses == [401, 401, 429]
        keys = [k.decode() for k in connection.scan_iter(match=f"*{prefix}*")]
        assert keys and any("acct:" in k for k in keys) and any("addr:" in k for k in keys)
    finally:
        for key in connection.scan_iter(match=f"*{prefix}*"):
            connection.delete(key)
        connection.close()
