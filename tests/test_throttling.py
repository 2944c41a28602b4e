"""Sign-in and reset throttling (core.throttle): per account and address, per account, per
address; memory and Redis; concurrent attempts; the store down."""

from __future__ import annotations

import secrets

import pytest

from core import throttle as throttle_store
from tests.conftest import RUN, csrf_token, login, make_staff, provision, staff_login

REDIS_URL = "redis://127.0.0.1:6379/0"

pytestmark = pytest.mark.usefixtures("english_clients")


def throttled_app(make_app, backend, password_hash, **limits):
    app = make_app(backend, extra={"LOGIN_LIMIT_PER_ACCOUNT_ADDRESS": "1000 per hour",
                                   "LOGIN_LIMIT_PER_ACCOUNT": "1000 per hour",
                                   "LOGIN_LIMIT_PER_ADDRESS": "1000 per hour", **limits})
    provision(app, "alpha", password_hash)
    provision(app, "bravo", password_hash)
    return app


def from_address(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_failures_per_account_and_address_are_throttled(make_app, backend, password_hash):
    app = throttled_app(make_app, backend, password_hash,
                        LOGIN_LIMIT_PER_ACCOUNT_ADDRESS="3 per minute")
    client = app.test_client()
    for _ in range(3):
        assert login(client, "alpha", "user@alpha.example", "wrong").status_code == 401
    blocked = login(client, "alpha", "user@alpha.example")  # even the right password waits
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)
    assert int(blocked.headers["Retry-After"]) > 0
    # other accounts, and the same email at another tenant, are not affected
    assert login(client, "alpha", "admin@alpha.example").status_code == 302
    assert login(app.test_client(), "bravo", "user@bravo.example").status_code == 302
    # the sign-in page itself still answers
    assert app.test_client().get("/t/alpha/login").status_code == 200


def test_an_attacker_elsewhere_cannot_lock_the_account_out(make_app, backend, password_hash):
    """Formerly the account alone was limited: three failures from anywhere refused the right
    password from everywhere. Now one address's failures block that address only, and its
    refused attempts do not use up the account's budget."""
    app = throttled_app(make_app, backend, password_hash,
                        LOGIN_LIMIT_PER_ACCOUNT_ADDRESS="3 per minute",
                        LOGIN_LIMIT_PER_ACCOUNT="5 per minute")
    attacker = from_address(app, "10.6.6.6")
    statuses = [login(attacker, "alpha", "user@alpha.example", "wrong").status_code
                for _ in range(10)]
    assert statuses == [401] * 3 + [429] * 7
    assert login(from_address(app, "10.1.1.1"), "alpha", "user@alpha.example").status_code == 302
    # the account budget holds 2 more failures (5 - 3): the 7 refused attempts took nothing
    other = from_address(app, "10.1.1.2")
    assert [login(other, "alpha", "user@alpha.example", "wrong").status_code
            for _ in range(3)] == [401, 401, 429]


def test_the_account_limit_caps_a_distributed_attack(make_app, backend, password_hash):
    app = throttled_app(make_app, backend, password_hash,
                        LOGIN_LIMIT_PER_ACCOUNT_ADDRESS="3 per minute",
                        LOGIN_LIMIT_PER_ACCOUNT="5 per minute")
    statuses = [login(from_address(app, f"10.9.0.{i}"), "alpha", "user@alpha.example",
                      "wrong").status_code for i in range(1, 7)]
    assert statuses == [401] * 5 + [429]
    # while this window lasts the account waits, by design; other accounts do not
    assert login(from_address(app, "10.9.1.1"), "alpha", "user@alpha.example").status_code == 429
    assert login(from_address(app, "10.9.1.1"), "alpha", "admin@alpha.example").status_code == 302


def _post_all_at_once(clients, tokens, url: str, form: dict) -> list[int]:
    """POST ``form`` (each with its client's CSRF token) from every client at the same
    moment (a barrier, one thread each); the statuses, sorted."""
    import threading

    start = threading.Barrier(len(clients))
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt(client, token) -> None:
        start.wait()
        status = client.post(url, data={**form, "csrf_token": token}).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=attempt, args=pair) for pair in zip(clients, tokens,
                                                                          strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def test_concurrent_attempts_cannot_exceed_the_limit(make_app, backend, password_hash):
    """Units are reserved before the password is checked: of 8 simultaneous wrong attempts,
    exactly 3 are checked (testing first and counting failures after let all 8 through)."""
    app = throttled_app(make_app, backend, password_hash,
                        LOGIN_LIMIT_PER_ACCOUNT_ADDRESS="3 per minute")
    clients = [app.test_client() for _ in range(8)]
    tokens = [csrf_token(c, "/t/alpha/login") for c in clients]
    statuses = _post_all_at_once(clients, tokens, "/t/alpha/login",
                                 {"email": "user@alpha.example", "password": "wrong"})
    assert statuses == [401] * 3 + [429] * 5


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
                        LOGIN_LIMIT_PER_ACCOUNT_ADDRESS="2 per minute",
                        LOGIN_LIMIT_PER_ADDRESS="2 per minute")
    for _ in range(4):
        assert login(app.test_client(), "alpha", "user@alpha.example").status_code == 302


def test_reset_requests_are_throttled_without_revealing_accounts(make_app, backend,
                                                                password_hash, smtp_server):
    """An address past its limit gets 429; an account never does: past its limits (per
    account and address, then per account) its mail is silently not sent, so a stranger
    cannot block someone's reset nor learn which accounts exist."""
    app = make_app(backend, **smtp_server.settings(), extra={
        "RESET_LIMIT_PER_ACCOUNT_ADDRESS": "2 per hour", "RESET_LIMIT_PER_ACCOUNT": "3 per hour",
        "RESET_LIMIT_PER_ADDRESS": "8 per hour"})
    app.config["MAIL_BACKGROUND"] = False  # sent before the answer: counts are exact
    provision(app, "alpha", password_hash)

    def ask(who, email: str) -> int:
        token = csrf_token(who, "/t/alpha/password/forgot")
        return who.post("/t/alpha/password/forgot",
                        data={"email": email, "csrf_token": token}).status_code

    def mails_to(email: str) -> int:
        return sum(email in m.rcpt_tos for m in smtp_server.messages)

    stranger = from_address(app, "10.3.0.1")
    assert [ask(stranger, "user@alpha.example") for _ in range(4)] == [302] * 4
    assert mails_to("user@alpha.example") == 2  # the stranger's share
    owner = from_address(app, "10.3.0.9")
    assert ask(owner, "user@alpha.example") == 302
    assert mails_to("user@alpha.example") == 3  # the owner still gets one
    assert ask(from_address(app, "10.3.0.8"), "user@alpha.example") == 302
    assert mails_to("user@alpha.example") == 3  # the account's bound on mail
    assert [ask(from_address(app, "10.3.0.2"), "ghost@alpha.example")
            for _ in range(3)] == [302] * 3  # same answers for an unknown address
    assert mails_to("ghost@alpha.example") == 0
    client = from_address(app, "10.3.0.3")
    assert [ask(client, f"n{i}@alpha.example") for i in range(8)] == [302] * 8
    assert ask(client, "admin@alpha.example") == 429
    assert ask(from_address(app, "10.3.0.4"), "admin@alpha.example") == 302


def test_another_spelling_of_an_address_counts_against_the_same_account(make_app, backend,
                                                                         password_hash):
    """Case and full-width letters reach the same account, so they share its limits."""
    app = throttled_app(make_app, backend, password_hash, LOGIN_LIMIT_PER_ACCOUNT="3 per hour")
    spellings = ["user@alpha.example", "USER@alpha.example", "user@\uff41lpha.example",
                 "user@alpha.\uff45xample"]
    statuses = [login(from_address(app, f"10.4.0.{i}"), "alpha", email, "wrong guess").status_code
                for i, email in enumerate(spellings)]
    assert statuses == [401, 401, 401, 429]
    assert login(from_address(app, "10.4.0.9"), "alpha", "user@alpha.example").status_code == 429


def test_an_ipv6_host_is_one_address_for_its_whole_64(make_app, backend, password_hash):
    app = throttled_app(make_app, backend, password_hash, LOGIN_LIMIT_PER_ADDRESS="2 per hour")
    statuses = [login(from_address(app, f"2001:db8:1:2::{i:x}"), "alpha", f"n{i}@alpha.example",
                      "wrong guess").status_code for i in range(1, 4)]
    assert statuses == [401, 401, 429]
    assert login(from_address(app, "2001:db8:1:3::1"), "alpha", "user@alpha.example"
                 ).status_code == 302


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

    connection = redis.Redis.from_url(REDIS_URL)
    connection.ping()  # Redis is part of this project's test environment
    prefix = f"qtt{RUN}-{secrets.token_hex(4)}"
    try:
        app = make_app(backend, ratelimit_storage_uri=REDIS_URL, ratelimit_key_prefix=prefix,
                       extra={"LOGIN_LIMIT_PER_ACCOUNT_ADDRESS": "2 per minute"})
        provision(app, "alpha", password_hash)
        client = app.test_client()
        statuses = [login(client, "alpha", "user@alpha.example", "wrong").status_code
                    for _ in range(3)]
        assert statuses == [401, 401, 429]
        keys = [k.decode() for k in connection.scan_iter(match=f"{prefix}:*")]
        for kind in ("acct-addr:", "acct:", "addr:"):
            assert any(kind in k for k in keys), (kind, keys)
        # a second app on the same Redis and prefix (another worker) sees the same counters
        twin = make_app(backend, ratelimit_storage_uri=REDIS_URL, ratelimit_key_prefix=prefix,
                        extra={"LOGIN_LIMIT_PER_ACCOUNT_ADDRESS": "2 per minute"})
        with app.app_context():
            charges = throttle_store.charges("LOGIN_LIMIT_PER_ACCOUNT_ADDRESS", "k", "2 per minute")
        throttle_store.of_app(twin).hit(charges)
        assert throttle_store.of_app(app).over(charges) == []
        throttle_store.of_app(twin).hit(charges)
        assert throttle_store.of_app(app).over(charges) == charges
    finally:
        for key in connection.scan_iter(match=f"{prefix}:*"):
            connection.delete(key)
        connection.close()


def test_an_unreachable_store_refuses_attempts(make_app, backend, password_hash):
    """Fail closed: no counter, no password check (503), never an unthrottled attempt."""
    app = make_app(backend, ratelimit_storage_uri="redis://127.0.0.1:1/0")
    provision(app, "alpha", password_hash)
    response = login(app.test_client(), "alpha", "user@alpha.example")
    assert response.status_code == 503
    assert "qalitel_session" not in response.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("uri", ["memcached://127.0.0.1:11211", "mongodb://x", "nonsense"])
def test_only_memory_and_redis_storage_are_accepted(tmp_path, uri):
    from core.config import ConfigError
    from qalitel import create_app

    with pytest.raises(ConfigError, match="QALITEL_RATELIMIT_STORAGE_URI"):
        create_app({"instance_dir": tmp_path / "i", "ratelimit_storage_uri": uri})


def test_a_bad_key_prefix_is_refused(tmp_path):
    from core.config import ConfigError
    from qalitel import create_app

    with pytest.raises(ConfigError, match="QALITEL_RATELIMIT_KEY_PREFIX"):
        create_app({"instance_dir": tmp_path / "i", "ratelimit_key_prefix": "two words"})


def test_staff_lockout_is_per_address_too(app):
    handle = make_staff(app)
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "10.6.6.6"
    for _ in range(5):
        assert staff_login(attacker, app, handle, code="000000").status_code == 401
    assert staff_login(attacker, app, handle).status_code == 429
    engineer = app.test_client()
    engineer.environ_base["REMOTE_ADDR"] = "10.1.1.1"
    assert staff_login(engineer, app, handle).status_code == 302


def test_concurrent_staff_attempts_cannot_exceed_the_limit(app):
    handle = make_staff(app)
    clients = [app.test_client() for _ in range(8)]
    tokens = [csrf_token(c, "/staff/login") for c in clients]
    statuses = _post_all_at_once(clients, tokens, "/staff/login", {
        "email": handle.email, "password": "wrong password!", "code": "000000"})
    assert statuses == [401] * 5 + [429] * 3


def test_staff_successes_do_not_count(app):
    from core.clock import ManualClock, set_clock

    handle = make_staff(app)
    clock = ManualClock()
    set_clock(app, clock)
    for _ in range(7):  # more than the 5 failures allowed per account and address
        clock.advance(seconds=31)  # a TOTP code works once: the next step's code
        assert staff_login(app.test_client(), app, handle).status_code == 302
