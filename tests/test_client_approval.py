"""The client's side of maintenance access, through its pages, on both backends: e-mail to
every admin, banner, approval (shorter, narrower) logged with the admin's name, the
engineer's access, revocation mid-session, expiries with the controllable clock, bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.db import db
from maintenance.models import Grant, GrantStatus, MaintenanceRequest, RequestStatus, Scope
from maintenance.requests import aware
from tests.conftest import CSRF_RE, link_in

BANNER = "maintenance request awaiting your decision"


def _request(app, public_id: str) -> MaintenanceRequest:
    with app.app_context():
        found = db.session.query(MaintenanceRequest).filter_by(public_id=public_id).one()
        if found.grant is not None:
            db.session.expunge(found.grant)
        db.session.expunge(found)
        return found


def _grant(app, public_id: str) -> Grant:
    with app.app_context():
        found = (db.session.query(Grant).join(MaintenanceRequest)
                 .filter(MaintenanceRequest.public_id == public_id).one())
        db.session.expunge(found)
        return found


def _token(client, slug: str = "alpha") -> str:
    match = CSRF_RE.search(client.get(f"/t/{slug}/").get_data(as_text=True))
    assert match
    return match.group(1)


def _post(client, url: str, token: str | None, **data):
    if token is not None:
        data["csrf_token"] = token
    return client.post(url, data=data)


def test_request_to_revocation(client_world):
    cw, app, world = client_world, client_world.app, client_world.world
    public_id = cw.request(scope="read-write", hours=4)

    # every active admin of alpha is told, nobody else
    mails = cw.mail.wait_for(2)
    assert {r for m in mails for r in m.rcpt_tos} == cw.alpha_admins
    assert all(len(m.rcpt_tos) == 1 for m in mails)
    for mail in mails:
        assert link_in(mail) == "http://localhost/t/alpha/maintenance/"
        assert "Investigate ticket #42" in mail.body and world.eve.name in mail.body
        assert world.marker not in mail.body

    # the banner: admins of alpha only
    admin, user = cw.signed_in("admin@alpha.example"), cw.signed_in("user@alpha.example")
    manager = cw.signed_in("manager@alpha.example")
    bravo_admin = cw.signed_in("admin@bravo.example", "bravo")
    page = admin.get("/t/alpha/").get_data(as_text=True)
    assert f"1 {BANNER}" in page and 'href="/t/alpha/maintenance/"' in page
    for other, slug in ((user, "alpha"), (manager, "alpha"), (bravo_admin, "bravo")):
        assert BANNER not in other.get(f"/t/{slug}/").get_data(as_text=True)
    listing = admin.get("/t/alpha/maintenance/")
    assert listing.status_code == 200 and public_id in listing.get_data(as_text=True)
    assert user.get("/t/alpha/maintenance/").status_code == 403

    # approval: shorter and read-only, logged with the admin's name
    token = _token(admin)
    approved = _post(admin, f"/t/alpha/maintenance/requests/{public_id}/approve", token,
                     hours="1.5", scope="read", comment="Only the dashboard, please")
    assert approved.status_code == 303 and approved.headers["Location"].endswith(
        "/t/alpha/maintenance/")
    req, grant = _request(app, public_id), _grant(app, public_id)
    assert req.status is RequestStatus.APPROVED and req.decided_by_name == "Admin alpha"
    assert BANNER not in admin.get("/t/alpha/").get_data(as_text=True)  # decided: no banner
    assert req.decided_by_email == "admin@alpha.example"
    assert grant.scope is Scope.READ and grant.status is GrantStatus.ACTIVE
    assert aware(grant.ends_at) - aware(grant.starts_at) == timedelta(hours=1.5)
    entry = cw.log()[-1]
    assert (entry.event, entry.actor_kind, entry.actor_name, entry.actor_email) == (
        "approval", "client", "Admin alpha", "admin@alpha.example")
    assert entry.request_public_id == public_id
    assert entry.detail["scope"] == "read" and entry.detail["hours"] == 1.5
    assert entry.detail["requested_scope"] == "read-write"
    assert entry.detail["comment"] == "Only the dashboard, please"
    assert BANNER not in admin.get("/t/alpha/").get_data(as_text=True)

    # the engineer works through the one door, each page logged
    eve = cw.staff()
    rows_url = f"/staff/grants/{grant.id}/tables/nonconformities"
    shown = eve.get(rows_url)
    assert shown.status_code == 200 and world.marker.encode() in shown.data
    events = [(e.event, e.actor_name) for e in cw.log()]
    assert events[-3:] == [("session_start", world.eve.name), ("view", world.eve.name),
                           ("session_end", world.eve.name)]
    record = f"{rows_url}/{world.tenants.a.record_ids[0]}"
    write = eve.post(record, data={"column": "title", "value": "changed",
                                   "csrf_token": CSRF_RE.search(
                                       eve.get("/staff/").get_data(as_text=True)).group(1)})
    assert write.status_code == 403  # narrowed to read: no change possible

    # revocation mid-session: the next request is refused
    count = len(cw.log())
    revoked = _post(admin, f"/t/alpha/maintenance/grants/{grant.id}/revoke", token)
    assert revoked.status_code == 303
    assert _grant(app, public_id).status is GrantStatus.REVOKED
    entry = cw.log()[-1]
    assert (entry.event, entry.actor_kind, entry.actor_name) == ("revocation", "client",
                                                                 "Admin alpha")
    assert len(cw.log()) == count + 1
    refused = eve.get(rows_url)
    assert refused.status_code == 403 and world.marker.encode() not in refused.data
    # a replayed revocation is refused and not logged twice
    assert _post(admin, f"/t/alpha/maintenance/grants/{grant.id}/revoke", token).status_code \
        == 409
    assert len(cw.log()) == count + 1
    history = admin.get("/t/alpha/maintenance/").get_data(as_text=True)
    assert "revoked" in history and "Admin alpha" in history


def test_second_admin_may_revoke_and_deny(client_world):
    cw, app = client_world, client_world.app
    first, second = cw.request(), cw.request(hours=1)
    admin, other = cw.signed_in("admin@alpha.example"), cw.signed_in("second@alpha.example")
    assert _post(admin, f"/t/alpha/maintenance/requests/{first}/approve", _token(admin)) \
        .status_code == 303
    grant = _grant(app, first)
    assert aware(grant.ends_at) - aware(grant.starts_at) == timedelta(hours=2)  # as asked
    assert _post(other, f"/t/alpha/maintenance/grants/{grant.id}/revoke", _token(other)) \
        .status_code == 303
    assert _grant(app, first).revoked_by_name == "Second Admin"
    assert _post(other, f"/t/alpha/maintenance/requests/{second}/deny", _token(other)) \
        .status_code == 400  # a denial needs a comment
    assert _request(app, second).status is RequestStatus.PENDING
    assert _post(other, f"/t/alpha/maintenance/requests/{second}/deny", _token(other),
                 comment="Not this week").status_code == 303
    denied = _request(app, second)
    assert denied.status is RequestStatus.DENIED and denied.decision_comment == "Not this week"
    entry = cw.log()[-1]
    assert (entry.event, entry.actor_name, entry.actor_email, entry.detail["comment"]) == (
        "denial", "Second Admin", "second@alpha.example", "Not this week")


def test_replayed_decisions_are_refused_and_logged_once(client_world):
    cw, app = client_world, client_world.app
    approved_id, denied_id = cw.request(), cw.request()
    admin = cw.signed_in("admin@alpha.example")
    token = _token(admin)
    base = "/t/alpha/maintenance/requests"
    assert _post(admin, f"{base}/{approved_id}/approve", token).status_code == 303
    assert _post(admin, f"{base}/{denied_id}/deny", token, comment="no").status_code == 303
    count = len(cw.log())
    for url, data in ((f"{base}/{approved_id}/approve", {}),
                      (f"{base}/{approved_id}/deny", {"comment": "changed my mind"}),
                      (f"{base}/{denied_id}/approve", {}),
                      (f"{base}/{denied_id}/deny", {"comment": "again"})):
        replay = _post(admin, url, token, **data)
        assert replay.status_code == 409, url
        assert "already" in replay.get_data(as_text=True)
    assert len(cw.log()) == count
    assert _request(app, denied_id).status is RequestStatus.DENIED
    with app.app_context():
        assert db.session.query(Grant).count() == 1


def test_bad_input_is_refused(client_world):
    cw, app = client_world, client_world.app
    read_id = cw.request(scope="read", hours=2)
    bravo_id = cw.request("bravo")
    admin, user = cw.signed_in("admin@alpha.example"), cw.signed_in("user@alpha.example")
    token = _token(admin)
    approve = f"/t/alpha/maintenance/requests/{read_id}/approve"
    count = len(cw.log())
    cases = [
        ({"scope": "read-write"}, 400),  # widening the scope
        ({"hours": "2.5"}, 400),  # lengthening the window
        ({"hours": "abc"}, 400), ({"hours": "-1"}, 400), ({"hours": "0"}, 400),
        ({"hours": "nan"}, 400), ({"hours": "inf"}, 400), ({"scope": "admin"}, 400),
        ({"comment": "x" * 1001}, 400),  # oversize comment
        ({"comment": "bell\x07"}, 400),
    ]
    for data, status in cases:
        assert _post(admin, approve, token, **data).status_code == status, data
    assert _post(admin, f"/t/alpha/maintenance/requests/{read_id}/deny", token,
                 comment="y" * 5000).status_code == 400
    # CSRF missing, or another session's token
    assert _post(admin, approve, None).status_code == 400
    assert _post(admin, approve, _token(user)).status_code == 400
    # a non-admin of this tenant
    assert _post(user, approve, _token(user)).status_code == 403
    # another tenant's request, forged and oversize ids
    for forged in (bravo_id, "00000000-0000-0000-0000-000000000000", "x" * 300):
        response = _post(admin, f"/t/alpha/maintenance/requests/{forged}/approve", token)
        assert response.status_code == 404, forged
    for grant_id in ("999999", "99999999999999999999"):
        assert _post(admin, f"/t/alpha/maintenance/grants/{grant_id}/revoke", token) \
            .status_code == 404
    # signed out: to the sign-in page
    anonymous = app.test_client()
    assert anonymous.post(approve).status_code in (302, 400)
    assert anonymous.get("/t/alpha/maintenance/").status_code == 302
    assert len(cw.log()) == count
    assert _request(app, read_id).status is RequestStatus.PENDING
    assert _request(app, bravo_id).status is RequestStatus.PENDING
    # and the valid decision still works afterwards
    assert _post(admin, approve, token, hours="0.5", comment="ok").status_code == 303


def test_pending_request_expires_with_the_clock(client_world):
    cw, app, clock = client_world, client_world.app, client_world.world.clock
    public_id = cw.request()
    admin = cw.signed_in("admin@alpha.example")
    clock.advance(hours=11, minutes=59)
    assert f"1 {BANNER}" in admin.get("/t/alpha/").get_data(as_text=True)
    clock.advance(minutes=1)
    assert BANNER not in admin.get("/t/alpha/").get_data(as_text=True)
    refused = _post(admin, f"/t/alpha/maintenance/requests/{public_id}/approve", _token(admin))
    assert refused.status_code == 409
    assert _request(app, public_id).status is RequestStatus.EXPIRED
    assert [e.event for e in cw.log()] == ["request", "request_expired"]
    page = admin.get("/t/alpha/maintenance/").get_data(as_text=True)
    assert "expired unanswered" in page and 'id="no-pending"' in page


def test_grant_expires_with_the_clock(client_world):
    cw, app, clock = client_world, client_world.app, client_world.world.clock
    by_cron, lazily = cw.request(hours=1), cw.request(hours=1)
    admin = cw.signed_in("admin@alpha.example")
    token = _token(admin)
    for public_id in (by_cron, lazily):
        assert _post(admin, f"/t/alpha/maintenance/requests/{public_id}/approve", token,
                     hours="1").status_code == 303
    eve = cw.staff()
    lazy_grant = _grant(app, lazily)
    url = f"/staff/grants/{lazy_grant.id}/tables/nonconformities"
    assert eve.get(url).status_code == 200
    clock.advance(hours=1)
    # the engineer's next request: refused, and the expiry recorded there and then
    refused = eve.get(url)
    assert refused.status_code == 403 and cw.world.marker.encode() not in refused.data
    assert _grant(app, lazily).status is GrantStatus.EXPIRED
    assert _grant(app, by_cron).status is GrantStatus.ACTIVE
    # cron expires the other one
    result = app.test_cli_runner().invoke(args=["maintenance", "expire"])
    assert result.exit_code == 0 and "1 grant(s) expired" in result.output
    assert _grant(app, by_cron).status is GrantStatus.EXPIRED
    assert "0 grant(s) expired" in app.test_cli_runner().invoke(
        args=["maintenance", "expire"]).output
    expiries = [e for e in cw.log() if e.event == "grant_expired"]
    assert sorted(e.request_public_id for e in expiries) == sorted([by_cron, lazily])
    assert all(e.actor_kind == "system" for e in expiries)
    # a revocation after the end changes nothing
    grant = _grant(app, by_cron)
    count = len(cw.log())
    assert _post(admin, f"/t/alpha/maintenance/grants/{grant.id}/revoke", token).status_code \
        == 409
    assert len(cw.log()) == count
    assert 'id="no-active"' in admin.get("/t/alpha/maintenance/").get_data(as_text=True)


def test_the_page_lists_pending_active_and_history(client_world):
    cw = client_world
    pending, active, denied = cw.request(), cw.request(scope="read-write"), cw.request()
    admin = cw.signed_in("admin@alpha.example")
    token = _token(admin)
    base = "/t/alpha/maintenance/requests"
    _post(admin, f"{base}/{active}/approve", token)
    _post(admin, f"{base}/{denied}/deny", token, comment="<b>no</b>")
    page = admin.get("/t/alpha/maintenance/").get_data(as_text=True)
    assert f'id="request-{pending}"' in page and f'id="request-{active}"' not in page
    assert f'id="grant-{_grant(cw.app, active).id}"' in page
    assert f'id="history-{denied}"' in page and f'id="history-{active}"' in page
    assert "&lt;b&gt;no&lt;/b&gt;" in page and "<b>no</b>" not in page
    assert f"2 {BANNER}" not in page and f"1 {BANNER}" in page
    # the read-write request offers read-write and read; a read one only read
    card = page.split(f'id="request-{pending}"')[1].split("</article>")[0]
    assert 'value="read-write"' not in card and 'value="read"' in card


@pytest.mark.parametrize("language", ["fr"])
def test_page_and_banner_are_translated(client_world, language):
    cw = client_world
    cw.request()
    admin = cw.signed_in("admin@alpha.example")
    page = admin.get("/t/alpha/maintenance/", headers={"Accept-Language": language})
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and '<html lang="fr"' in body
    assert "Maintenance access" not in body and BANNER not in body
