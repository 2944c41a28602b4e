"""The client admins' JSON API for maintenance decisions: same session, CSRF (X-CSRFToken)
and profile checks as the pages; JSON errors 400/401/403/404/409; both backends."""

from __future__ import annotations

import json

from core.db import db
from maintenance.models import Grant, GrantStatus, MaintenanceRequest, RequestStatus

API = "/t/alpha/api/maintenance"


def _csrf(client, slug: str = "alpha") -> str:
    listing = client.get(f"/t/{slug}/api/maintenance/requests")
    assert listing.status_code == 200 and listing.is_json
    return listing.get_json()["csrf_token"]


def _post(client, url: str, body=None, token: str | None = None, raw: str | None = None):
    headers = {"X-CSRFToken": token} if token else {}
    if raw is not None:
        return client.post(url, data=raw, content_type="application/json", headers=headers)
    return client.post(url, json=body, headers=headers) if body is not None else \
        client.post(url, headers=headers)


def _status(app, public_id: str) -> RequestStatus:
    with app.app_context():
        return db.session.query(MaintenanceRequest).filter_by(public_id=public_id).one().status


def test_list_approve_revoke(client_world):
    cw = client_world
    public_id = cw.request(scope="read-write", hours=3)
    cw.request("bravo")
    admin = cw.signed_in("admin@alpha.example")
    listing = admin.get(f"{API}/requests")
    assert listing.headers["Cache-Control"] == "no-store"
    data = listing.get_json()
    assert [r["id"] for r in data["requests"]] == [public_id]  # never bravo's
    item = data["requests"][0]
    assert item["status"] == "pending" and item["scope"] == "read-write" and item["hours"] == 3
    assert item["engineer"] == {"name": cw.world.eve.name, "email": cw.world.eve.email}
    assert item["grant"] is None and item["reason"] == "Investigate ticket #42"
    assert admin.get(f"{API}/requests?status=approved").get_json()["requests"] == []
    assert admin.get(f"{API}/requests?status=nonsense").status_code == 400

    token = data["csrf_token"]
    approved = _post(admin, f"{API}/requests/{public_id}/approve",
                     {"hours": 2, "scope": "read", "comment": "go"}, token)
    assert approved.status_code == 200, approved.get_data(as_text=True)
    body = approved.get_json()["request"]
    assert body["status"] == "approved"
    assert body["decided_by"] == {"name": "Admin alpha", "email": "admin@alpha.example"}
    assert body["grant"]["scope"] == "read" and body["grant"]["state"] == "active"
    assert body["comment"] == "go"
    entry = cw.log()[-1]
    assert (entry.event, entry.actor_kind, entry.actor_name) == ("approval", "client",
                                                                 "Admin alpha")

    grant_id = body["grant"]["id"]
    eve = cw.staff()
    assert eve.get(f"/staff/grants/{grant_id}/").status_code == 200
    revoked = _post(admin, f"{API}/grants/{grant_id}/revoke", {"comment": "done"}, token)
    assert revoked.status_code == 200
    assert revoked.get_json()["grant"]["state"] == "revoked"
    assert revoked.get_json()["grant"]["revoked_by"]["name"] == "Admin alpha"
    assert eve.get(f"/staff/grants/{grant_id}/").status_code == 403
    again = _post(admin, f"{API}/grants/{grant_id}/revoke", None, token)
    assert again.status_code == 409 and again.get_json()["error"] == "conflict"
    listed = admin.get(f"{API}/requests").get_json()["requests"][0]
    assert listed["grant"]["state"] == "revoked"


def test_deny_and_replays(client_world):
    cw, app = client_world, client_world.app
    first, second = cw.request(), cw.request()
    admin = cw.signed_in("admin@alpha.example")
    token = _csrf(admin)
    assert _post(admin, f"{API}/requests/{first}/deny", {}, token).status_code == 400
    denied = _post(admin, f"{API}/requests/{first}/deny", {"comment": "not now"}, token)
    assert denied.status_code == 200 and denied.get_json()["request"]["status"] == "denied"
    assert _post(admin, f"{API}/requests/{second}/approve", None, token).status_code == 200
    count = len(cw.log())
    for url, body in ((f"{API}/requests/{first}/approve", {}),
                      (f"{API}/requests/{first}/deny", {"comment": "again"}),
                      (f"{API}/requests/{second}/approve", {}),
                      (f"{API}/requests/{second}/deny", {"comment": "late"})):
        response = _post(admin, url, body, token)
        assert response.status_code == 409, url
        assert response.get_json()["error"] == "conflict"
    assert len(cw.log()) == count
    with app.app_context():
        assert db.session.query(Grant).count() == 1
    # an expired request is a replay too
    late = cw.request()
    cw.world.clock.advance(hours=12)
    assert _post(admin, f"{API}/requests/{late}/approve", {}, token).status_code == 409
    assert _status(app, late) is RequestStatus.EXPIRED
    assert [e.event for e in cw.log()][-2:] == ["request", "request_expired"]


def test_errors(client_world):
    cw, app = client_world, client_world.app
    public_id = cw.request(scope="read", hours=2)
    bravo_id = cw.request("bravo")
    admin, user = cw.signed_in("admin@alpha.example"), cw.signed_in("user@alpha.example")
    token = _csrf(admin)
    approve = f"{API}/requests/{public_id}/approve"
    count = len(cw.log())
    bad_bodies = [{"scope": "read-write"}, {"hours": 3}, {"hours": "many"}, {"hours": -1},
                  {"hours": True}, {"hours": [1]}, {"scope": 7}, {"scope": "owner"},
                  {"comment": "x" * 1001}, {"comment": {"a": 1}}]
    for body in bad_bodies:
        response = _post(admin, approve, body, token)
        assert response.status_code == 400, body
        assert response.get_json()["error"] == "bad_request"
    for raw in ("{not json", "[1, 2]", '"text"'):
        assert _post(admin, approve, token=token, raw=raw).status_code == 400, raw
    # CSRF: missing, or forged
    missing = _post(admin, approve, {})
    assert missing.status_code == 400 and missing.get_json()["error"] == "csrf"
    assert _post(admin, approve, {}, "forged-token").status_code == 400
    # not an admin of this tenant
    assert user.get(f"{API}/requests").status_code == 403
    forbidden = user.post(approve, json={}, headers={"X-CSRFToken": _page_token(user)})
    assert forbidden.status_code == 403 and forbidden.get_json()["error"] == "forbidden"
    bravo_admin = cw.signed_in("admin@bravo.example", "bravo")
    assert bravo_admin.get(f"{API}/requests").status_code == 401  # signed in elsewhere only
    # signed out
    anonymous = app.test_client()
    assert anonymous.get(f"{API}/requests").status_code == 401
    assert anonymous.get(f"{API}/requests").get_json()["error"] == "unauthenticated"
    # unknown ids and another tenant's: 404
    for forged in (bravo_id, "00000000-0000-0000-0000-000000000000", "y" * 400):
        response = _post(admin, f"{API}/requests/{forged}/approve", {}, token)
        assert response.status_code == 404 and response.get_json()["error"] == "not_found"
    for grant_id in ("1", "424242", "99999999999999999999"):
        assert _post(admin, f"{API}/grants/{grant_id}/revoke", {}, token).status_code == 404
    assert admin.get(approve).status_code == 405
    assert len(cw.log()) == count
    assert _status(app, public_id) is RequestStatus.PENDING
    assert _status(app, bravo_id) is RequestStatus.PENDING
    # another tenant's grant id is a 404 too
    grant_ok = _post(admin, approve, {"hours": "1,5"}, token)
    assert grant_ok.status_code == 200
    grant_id = grant_ok.get_json()["request"]["grant"]["id"]
    foreign = _post(bravo_admin, f"/t/bravo/api/maintenance/grants/{grant_id}/revoke", {},
                    _csrf(bravo_admin, "bravo"))
    assert foreign.status_code == 404
    with app.app_context():
        assert db.session.get(Grant, grant_id).status is GrantStatus.ACTIVE


def _page_token(client) -> str:
    from tests.conftest import CSRF_RE

    return CSRF_RE.search(client.get("/t/alpha/").get_data(as_text=True)).group(1)


def test_the_api_never_answers_html(client_world):
    cw = client_world
    admin = cw.signed_in("admin@alpha.example")
    for response in (admin.post(f"{API}/requests/x/approve"),
                     admin.post(f"{API}/requests/x/approve", headers={"X-CSRFToken": "bad"})):
        assert response.status_code == 400 and response.is_json
        assert set(json.loads(response.get_data(as_text=True))) == {"error", "message"}
