"""Bad input on the records pages: oversize fields, markup, forged ids, CSRF, invalid enum
values and dates, sort/filter injection, absurd page numbers. None of it may answer 500,
store anything, or leak out of the user's scope."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from tests.conftest import csrf_token
from tests.records_world import EXPECTED, build_world, client_for

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def world(app, password_hash):
    return build_world(app, password_hash)


def _record_count(world) -> int:
    from sqlalchemy import func, select

    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        return tdb.execute(select(func.count()).select_from(NonConformity)).scalar()


def _valid(world, **override):
    data = {"title": "Valid", "description": "", "detected_on": date.today().isoformat(),
            "detected_by": world.users["user1"], "origin": "internal", "severity": "minor",
            "folder": 0, "assignee": 0, "cause_analysis": ""}
    data.update(override)
    return data


def test_oversize_fields_are_refused_clearly(world):
    client = client_for(world, "user1")
    url = f"/t/{world.slug}/records/new"
    before = _record_count(world)
    cases = [({"title": "t" * 201}, "title is too long"),
             ({"description": "d" * 20001}, "description is too long"),
             ({"cause_analysis": "c" * 20001}, "cause analysis is too long")]
    for override, message in cases:
        token = csrf_token(client, url)
        response = client.post(url, data={"csrf_token": token, **_valid(world, **override)})
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    assert _record_count(world) == before
    # the limits themselves are accepted
    token = csrf_token(client, url)
    ok = client.post(url, data={"csrf_token": token, **_valid(
        world, title="t" * 200, description="d" * 20000)})
    assert ok.status_code == 303 and _record_count(world) == before + 1
    # an action title too long, a status comment too long
    token = csrf_token(client, f"/t/{world.slug}/actions/new")
    action = client.post(f"/t/{world.slug}/actions/new", data={
        "csrf_token": token, "title": "a" * 201, "kind": "corrective",
        "owner": world.users["user1"], "status": "planned"})
    assert action.status_code == 400 and b"title is too long" in action.data
    manager = client_for(world, "manager1")
    record_url = f"/t/{world.slug}/records/{world.records['other']}"
    token = csrf_token(manager, record_url)
    comment = manager.post(f"{record_url}/status", data={
        "csrf_token": token, "to_status": "analysis", "comment": "c" * 2001})
    assert comment.status_code == 400 and b"comment is too long" in comment.data


def test_markup_is_escaped_everywhere(world):
    from qalitel.records import service

    with world.app.app_context(), world.context():
        manager = world.user("manager1")
        record = service.create_nonconformity(manager, XSS, XSS, cause_analysis=XSS)
        service.change_status(manager, record, "analysis", comment=XSS)
        service.share_record(manager, record, world.users["user1"])
        service.update_nonconformity(manager, record, title=XSS + "!")
        action = service.create_action(manager, XSS, record=record, description=XSS,
                                       status="done")
        service.check_effectiveness(manager, action, True, XSS)
        folder = service.create_folder(manager, XSS[:100])
        service.update_nonconformity(manager, record, folder=folder.id)
    client = client_for(world, "manager1")
    base = f"/t/{world.slug}"
    pages = [f"{base}/", f"{base}/records/", f"{base}/records/{record.id}",
             f"{base}/records/{record.id}/edit", f"{base}/actions/",
             f"{base}/actions/{action.id}", f"{base}/actions/{action.id}/edit",
             f"{base}/folders/", f"{base}/folders/{folder.id}",
             f"{base}/records/?q={XSS}", f"{base}/actions/?q={XSS}"]
    for page in pages:
        response = client.get(page)
        html = response.get_data(as_text=True)
        assert response.status_code == 200, page
        assert "<script>alert" not in html and "<img src=x" not in html, page
        assert "&lt;script&gt;" in html or "&lt;img" in html, page


def test_forged_ids_from_another_scope_are_not_found(world):
    base = f"/t/{world.slug}"
    user2 = client_for(world, "user2")
    token = csrf_token(user2, f"{base}/records/new")
    for key, record_id in world.records.items():
        if key in EXPECTED["user2"]:
            continue
        assert user2.get(f"{base}/records/{record_id}").status_code == 404
        edit = user2.post(f"{base}/records/{record_id}/edit",
                          data={"csrf_token": token, **_valid(world, title="forged")})
        assert edit.status_code == 404
    # and ids that do not exist at all, or are out of range
    for forged in ("999999", "0", "2147483648", "99999999999999999999"):
        assert user2.get(f"{base}/records/{forged}").status_code == 404
        assert user2.get(f"{base}/actions/{forged}").status_code == 404
    assert user2.get(f"{base}/records/-1").status_code == 404
    # a forged assignee / share target that does not exist is a form error, not a 500
    user1 = client_for(world, "user1")
    url = f"{base}/records/{world.records['by_user1']}"
    token = csrf_token(user1, url)
    share = user1.post(f"{url}/shares", data={"csrf_token": token, "user": 424242})
    assert share.status_code == 400
    # a folder that exists but is confidential and not cleared is not a valid choice
    token = csrf_token(user1, f"{base}/records/new")
    hidden = user1.post(f"{base}/records/new", data={
        "csrf_token": token, **_valid(world, folder=world.folders["HR"])})
    assert hidden.status_code == 400


def test_csrf_missing_forged_or_replayed(world):
    base = f"/t/{world.slug}"
    user1 = client_for(world, "user1")
    before = _record_count(world)
    missing = user1.post(f"{base}/records/new", data=_valid(world))
    assert missing.status_code == 400
    forged = user1.post(f"{base}/records/new", data={"csrf_token": "forged", **_valid(world)})
    assert forged.status_code == 400
    # a token taken from another person's session is refused in this one
    other = client_for(world, "manager1")
    stolen = csrf_token(other, f"{base}/records/new")
    replay = user1.post(f"{base}/records/new", data={"csrf_token": stolen, **_valid(world)})
    assert replay.status_code == 400
    # and so is every other form
    url = f"{base}/records/{world.records['by_user1']}"
    for path, data in ((f"{url}/status", {"to_status": "analysis"}),
                       (f"{url}/shares", {"user": world.users["user2"]}),
                       (f"{base}/actions/new", {"title": "x"}),
                       (f"{base}/folders/", {"name": "x"})):
        assert user1.post(path, data={"csrf_token": stolen, **data}).status_code == 400
        assert user1.post(path, data=data).status_code == 400
    assert _record_count(world) == before


def test_invalid_enum_values_and_ids(world):
    base = f"/t/{world.slug}"
    user1 = client_for(world, "user1")
    before = _record_count(world)
    for override in ({"origin": "martian"}, {"severity": "apocalyptic"}, {"severity": ""},
                     {"folder": "abc"}, {"folder": "99999"}, {"assignee": "1 OR 1=1"},
                     {"detected_by": "99999"}, {"assignee": "-3"}):
        token = csrf_token(user1, f"{base}/records/new")
        response = user1.post(f"{base}/records/new",
                              data={"csrf_token": token, **_valid(world, **override)})
        assert response.status_code == 400, override
        assert b"Not a valid choice" in response.data, override
    assert _record_count(world) == before
    manager = client_for(world, "manager1")
    url = f"{base}/records/{world.records['other']}"
    token = csrf_token(manager, url)
    bogus = manager.post(f"{url}/status", data={"csrf_token": token, "to_status": "deleted"})
    assert bogus.status_code == 400
    token = csrf_token(user1, f"{base}/actions/new")
    for override in ({"kind": "magic"}, {"status": "teleported"}):
        action = user1.post(f"{base}/actions/new", data={
            "csrf_token": token, "title": "x", "kind": "corrective", "owner": world.users["user1"],
            "status": "planned", **override})
        assert action.status_code == 400 and b"Not a valid choice" in action.data
    action_url = f"{base}/actions/{world.actions['standalone_manager1']}"
    effect = manager.post(f"{action_url}/effectiveness", data={
        "csrf_token": csrf_token(manager, f"{base}/"), "effective": "maybe"})
    assert effect.status_code == 400
    # the service refuses too, whatever a view would pass
    from qalitel.records import service

    with world.app.app_context(), world.context():
        with pytest.raises(service.RecordError):
            service.create_nonconformity(world.user("user1"), "x", severity="huge")
        with pytest.raises(service.RecordError):
            service.create_action(world.user("user1"), "x", kind="telepathic")


def test_invalid_dates(world):
    base = f"/t/{world.slug}"
    user1 = client_for(world, "user1")
    before = _record_count(world)
    future = (date.today() + timedelta(days=30)).isoformat()
    for value, message in (("2024-13-45", "Not a valid date"), ("yesterday", "Not a valid date"),
                           ("0000-00-00", "Not a valid date"), ("", "date is required"),
                           (future, "cannot be in the future"),
                           ("1900-01-01", "not a valid date")):
        token = csrf_token(user1, f"{base}/records/new")
        response = user1.post(f"{base}/records/new",
                              data={"csrf_token": token, **_valid(world, detected_on=value)})
        assert response.status_code == 400, value
        assert message in response.get_data(as_text=True), value
    assert _record_count(world) == before
    token = csrf_token(user1, f"{base}/actions/new")
    action = user1.post(f"{base}/actions/new", data={
        "csrf_token": token, "title": "x", "kind": "corrective", "owner": world.users["user1"],
        "status": "planned", "due_date": "31/02/2024"})
    assert action.status_code == 400 and b"Not a valid date" in action.data


def test_sort_and_filter_injection_is_ignored(world):
    base = f"/t/{world.slug}/records/"
    user1 = client_for(world, "user1")
    expected = EXPECTED["user1"]
    attempts = [
        {"sort": "title; DROP TABLE nonconformities"}, {"sort": "password_hash"},
        {"sort": "--number"}, {"sort": "-(SELECT 1)"}, {"status": "' OR 1=1 --"},
        {"folder": "1 OR 1=1"}, {"assignee": "1) OR (1=1"}, {"severity": "minor' --"},
        {"overdue": "yes"}, {"per_page": "1000000"}, {"per_page": "-5"},
        {"q": "%"}, {"q": "_"}, {"q": "' OR 1=1 --"}, {"q": "x" * 10000},
        {"sort": "number", "status": ["open", "closed"]},
    ]
    for args in attempts:
        response = user1.get(base, query_string=args)
        assert response.status_code == 200, args
        shown = set(re.findall(r">([a-z_0-9]+) title<", response.get_data(as_text=True)))
        assert shown <= expected, args
    # an unknown sort column falls back to the default order (newest first)
    html = user1.get(base, query_string={"sort": "password_hash"}).get_data(as_text=True)
    numbers = [int(n) for n in re.findall(r"<td>NC-(\d+)</td>", html)]
    assert numbers == sorted(numbers, reverse=True) and len(numbers) == len(expected)
    # a literal % searches for a percent sign, not for everything
    assert "0 non-conformities" in user1.get(base, query_string={"q": "%"}).get_data(
        as_text=True)
    # the same on the action list and the exports
    for url in (f"/t/{world.slug}/actions/", f"/t/{world.slug}/actions/export.csv",
                f"/t/{world.slug}/records/export.csv"):
        for args in attempts:
            assert user1.get(url, query_string=args).status_code == 200, (url, args)
    # an unknown sort is never saved in the preference cookie
    from itsdangerous import URLSafeTimedSerializer

    from qalitel import prefs

    user1.get(base, query_string={"sort": "password_hash", "status": "' OR 1=1 --"})
    cookie = user1.get_cookie(prefs.COOKIE, path=f"/t/{world.slug}/")
    saved = URLSafeTimedSerializer(world.app.secret_key, salt=prefs.SALT).loads(cookie.value)
    assert saved["lists"]["records"] == {"filters": {}, "sort": "-number", "page_size": 25}


def test_huge_and_negative_page_numbers(world):
    base = f"/t/{world.slug}/records/"
    user1 = client_for(world, "user1")
    for page in ("-5", "0", "abc", "99999999999999999999999999", "1e9", "2147483648", ""):
        response = user1.get(base, query_string={"page": page, "per_page": 10})
        assert response.status_code == 200, page
        assert len(re.findall(r"<td>NC-(\d+)</td>", response.get_data(as_text=True))) == 4
    last = user1.get(base, query_string={"page": "99999999", "per_page": 10})
    assert "Page 1 of 1" in last.get_data(as_text=True)
    actions = client_for(world, "admin").get(f"/t/{world.slug}/actions/",
                                             query_string={"page": "-1"})
    assert actions.status_code == 200


def test_services_refuse_what_views_would_refuse(world):
    """The write services check permissions themselves, whatever the caller."""
    from qalitel.records import service
    from qalitel.records.models import Action, Folder, NonConformity
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        user2 = world.user("user2")
        other = tdb.get(NonConformity, world.records["other"])
        action = tdb.get(Action, world.actions["standalone_manager1"])
        general = tdb.get(Folder, world.folders["General"])
        refused = [
            lambda: service.update_nonconformity(user2, other, title="x"),
            lambda: service.change_status(user2, other, "analysis"),
            lambda: service.share_record(user2, other, user2.id),
            lambda: service.create_action(user2, "x", record=other),
            lambda: service.update_action(user2, action, title="x"),
            lambda: service.check_effectiveness(user2, action, True),
            lambda: service.create_folder(user2, "Mine"),
            lambda: service.grant_clearance(user2, general, user_id=user2.id),
        ]
        for call in refused:
            with pytest.raises(service.PermissionDenied):
                call()
        # a manager not cleared for a confidential folder cannot manage it either
        legal = tdb.get(Folder, world.folders["Legal"])
        with pytest.raises(service.PermissionDenied):
            service.grant_clearance(world.user("manager1"), legal,
                                    user_id=world.users["manager1"])
        assert tdb.get(NonConformity, world.records["other"]).title == "other title"
