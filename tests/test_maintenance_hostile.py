"""Hostile input to the maintenance pages and API: never a 500. Deeply nested or broken JSON
gets a 400 JSON error, an oversize body a 413, a huge page number on the access log a page;
a forged ``Host`` on the console never reaches the mail sent to the client's admins."""

from __future__ import annotations

import pytest

from maintenance.client_views import API_BODY_MAX
from tests.conftest import csrf_token, link_in, staff_login
from tests.test_maintenance_api import API, _csrf, _post


@pytest.mark.parametrize("raw", [
    "[" * 100_000,
    "{" * 50_000,
    '{"comment": "unterminated',
    '{"hours": 1' + "0" * 5000 + "}",
    "\udcff",
    "[1, 2, 3]",
    '"just a string"',
    "1e999999",
])
def test_hostile_json_is_a_clear_400(client_world, raw):
    cw = client_world
    public_id = cw.request()
    admin = cw.signed_in("admin@alpha.example")
    answer = _post(admin, f"{API}/requests/{public_id}/deny", token=_csrf(admin),
                   raw=raw.encode("utf-8", "surrogateescape"))
    assert answer.status_code == 400, answer.get_data(as_text=True)[:200]
    assert answer.is_json and answer.get_json()["error"] == "bad_request"
    assert admin.get(f"{API}/requests").get_json()["requests"][0]["status"] == "pending"


@pytest.mark.parametrize("raw", ['{"hours": NaN}', '{"hours": Infinity}', '{"hours": 1e999}'])
def test_non_finite_numbers_are_refused(client_world, raw):
    cw = client_world
    public_id = cw.request()
    admin = cw.signed_in("admin@alpha.example")
    answer = _post(admin, f"{API}/requests/{public_id}/approve", token=_csrf(admin), raw=raw)
    assert answer.status_code == 400 and answer.get_json()["error"] == "bad_request"


def test_an_oversize_body_is_413(client_world):
    cw = client_world
    public_id = cw.request()
    admin = cw.signed_in("admin@alpha.example")
    body = '{"comment": "' + "x" * API_BODY_MAX + '"}'
    answer = _post(admin, f"{API}/requests/{public_id}/deny", token=_csrf(admin), raw=body)
    assert answer.status_code == 413 and answer.get_json()["error"] == "too_large"
    assert admin.get(f"{API}/requests").get_json()["requests"][0]["status"] == "pending"


@pytest.mark.parametrize("page", ["99999999999999999999999", "9223372036854775808", "-7", "x"])
def test_a_huge_page_number_on_the_access_log_is_no_500(client_world, page):
    cw = client_world
    cw.request()
    admin = cw.signed_in("admin@alpha.example")
    answer = admin.get(f"/t/alpha/maintenance/log?page={page}")
    assert answer.status_code == 200
    assert 'data-status="valid"' in answer.get_data(as_text=True)


def test_a_forged_host_on_the_console_never_reaches_the_mail(client_world):
    cw = client_world
    eve = cw.app.test_client()
    eve.environ_base.update(HTTP_HOST="evil.example", HTTP_X_FORWARDED_HOST="evil.example")
    assert staff_login(eve, cw.app, cw.world.eve).status_code == 302
    token = csrf_token(eve, "/staff/requests/new")
    made = eve.post("/staff/requests/new", data={
        "csrf_token": token, "tenant": "alpha", "reason": "Slow page", "scope": "read",
        "hours": "1"})
    assert made.status_code == 302, made.get_data(as_text=True)[:300]
    for message in cw.mail.wait_for(len(cw.alpha_admins)):
        assert "evil.example" not in message.body
        assert link_in(message) == "http://localhost/t/alpha/maintenance/"
