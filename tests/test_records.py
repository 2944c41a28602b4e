"""Non-conformities, their workflow, shares and history; actions and effectiveness checks;
folders; lists (filters, sort, pages, saved settings); CSV export; dashboard."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

import pytest
from babel.dates import format_skeleton
from itsdangerous import URLSafeTimedSerializer

from tests.conftest import csrf_token, login, provision
from tests.html_forms import form_of
from tests.records_world import build_world, client_for


@pytest.fixture
def world(app, password_hash):
    return build_world(app, password_hash)


def _client(world, profile):
    return client_for(world, profile)


def _post(client, url, data, token_url=None):
    token = csrf_token(client, token_url or url)
    return client.post(url, data={"csrf_token": token, **data})


def _version(client, edit_url: str) -> str:
    """The version an edit form carries (the one it was built from)."""
    page = client.get(edit_url).get_data(as_text=True)
    return form_of(page, lambda f: "version" in f.names()).data()["version"][0]


def _record(world, key_or_id):
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    record_id = world.records.get(key_or_id, key_or_id)
    return tdb.get(NonConformity, record_id)


def _prefs(client, world) -> dict:
    from qalitel import prefs

    cookie = client.get_cookie(prefs.COOKIE, path=f"/t/{world.slug}/")
    assert cookie is not None
    serializer = URLSafeTimedSerializer(world.app.secret_key, salt=prefs.SALT)
    return serializer.loads(cookie.value)


def test_service_signature_used_by_fixtures(world):
    from qalitel.records.service import create_nonconformity

    with world.app.app_context(), world.context():
        record = create_nonconformity(world.user("user1"), "  Leak  ", " oil ")
        assert (record.title, record.description, record.status) == ("Leak", "oil", "open")
        assert record.detected_by_id == record.created_by_id == world.users["user1"]
        assert record.number == max(world.numbers.values()) + 1
        assert (record.origin, record.severity, record.folder_id) == ("internal", "minor", None)


def test_create_edit_and_history(world):
    client = _client(world, "user1")
    base = f"/t/{world.slug}"
    created = _post(client, f"{base}/records/new", {
        "title": "Scratched housing", "description": "Batch 42", "detected_on": "2024-05-02",
        "detected_by": world.users["user1"], "origin": "supplier", "severity": "major",
        "folder": world.folders["General"], "assignee": world.users["manager1"],
        "cause_analysis": ""})
    assert created.status_code == 303
    record_id = int(created.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"{base}/records/{record_id}").get_data(as_text=True)
    assert "Scratched housing" in page and "Supplier" in page and "Manager1 acme" in page
    with world.app.app_context(), world.context():
        record = _record(world, record_id)
        assert record.detected_on == date(2024, 5, 2) and record.severity == "major"
        assert record.created_by_id == world.users["user1"]

    edited = _post(client, f"{base}/records/{record_id}/edit", {
        "version": _version(client, f"{base}/records/{record_id}/edit"),
        "title": "Scratched housing (line 2)", "description": "Batch 42", "detected_on":
        "2024-05-02", "detected_by": world.users["user1"], "origin": "supplier",
        "severity": "critical", "folder": 0, "assignee": world.users["manager1"],
        "cause_analysis": "Worn fixture"})
    assert edited.status_code == 303
    page = client.get(f"{base}/records/{record_id}").get_data(as_text=True)
    assert "Scratched housing (line 2)" in page
    with world.app.app_context(), world.context():
        from sqlalchemy import select

        from qalitel.records.models import RecordHistory
        from tenants.context import tdb

        rows = tdb.execute(select(RecordHistory).where(RecordHistory.record_id == record_id)
                           ).scalars().all()
        changes = {(h.field, h.old_value, h.new_value) for h in rows}
        assert changes == {("title", "Scratched housing", "Scratched housing (line 2)"),
                           ("severity", "major", "critical"), ("folder", "General", None),
                           ("cause_analysis", "", "Worn fixture")}
        assert {h.user_id for h in rows} == {world.users["user1"]}
    # the history is shown, with translated codes
    assert "Worn fixture" in page and "Critical" in page


def test_workflow_transitions(world):
    base = f"/t/{world.slug}"
    record_id = world.records["assigned_user1"]  # assigned to user1, created by manager1
    url = f"{base}/records/{record_id}"
    user1 = _client(world, "user1")
    user2_record = world.records["by_user1"]  # user1 is its author but not its assignee

    # only the next step is allowed
    skip = _post(user1, f"{url}/status", {"to_status": "closed"}, url)
    assert skip.status_code == 400 and b"cannot move" in skip.data
    assert _post(user1, f"{url}/status", {"to_status": "analysis", "comment": "go"},
                 url).status_code == 303
    # treatment needs a cause analysis
    refused = _post(user1, f"{url}/status", {"to_status": "treatment"}, url)
    assert refused.status_code == 400 and b"cause analysis" in refused.data
    with world.app.app_context(), world.context():
        from qalitel.records import service

        service.update_nonconformity(world.user("manager1"), _record(world, record_id),
                                     cause_analysis="Operator error")
    assert _post(user1, f"{url}/status", {"to_status": "treatment"}, url).status_code == 303
    # a user who is not the assignee cannot move a record, even one they wrote
    other = f"{base}/records/{user2_record}"
    assert _post(user1, f"{other}/status", {"to_status": "analysis"}, other).status_code == 403

    manager = _client(world, "manager1")
    assert _post(manager, f"{url}/status", {"to_status": "verification"}, url).status_code == 303
    # verification can go back to treatment, or on to closed
    with world.app.app_context(), world.context():
        action = _record(world, record_id)
        from qalitel.records import service

        open_action = service.create_action(world.user("manager1"), "Retrain",
                                            record=action, owner_id=world.users["user1"])
    blocked = _post(manager, f"{url}/status", {"to_status": "closed"}, url)
    assert blocked.status_code == 400 and b"action" in blocked.data
    with world.app.app_context(), world.context():
        from qalitel.records import service
        from qalitel.records.models import Action
        from tenants.context import tdb

        service.update_action(world.user("manager1"), tdb.get(Action, open_action.id),
                              status="done")
        # a corrective action closes the record only once judged effective (closure rules)
        service.check_effectiveness(world.user("manager1"), tdb.get(Action, open_action.id),
                                    True)
    assert _post(manager, f"{url}/status", {"to_status": "closed"}, url).status_code == 303
    page = manager.get(url).get_data(as_text=True)
    assert "Change status" not in page  # closed: no next step

    with world.app.app_context(), world.context():
        from sqlalchemy import select

        from qalitel.records.models import StatusChange
        from tenants.context import tdb

        steps = tdb.execute(select(StatusChange).where(StatusChange.record_id == record_id)
                            .order_by(StatusChange.id)).scalars().all()
        assert [(s.from_status, s.to_status) for s in steps] == [
            (None, "open"), ("open", "analysis"), ("analysis", "treatment"),
            ("treatment", "verification"), ("verification", "closed")]
        assert [s.changed_by_id for s in steps[1:]] == [world.users[k] for k in (
            "user1", "user1", "manager1", "manager1")]
        assert steps[1].comment == "go" and all(s.changed_at for s in steps)
        assert _record(world, record_id).status == "closed"


def test_share_and_unshare(world):
    base = f"/t/{world.slug}"
    record_id = world.records["by_user1"]
    url = f"{base}/records/{record_id}"
    user1, user2 = _client(world, "user1"), _client(world, "user2")
    assert user2.get(url).status_code == 404
    assert _post(user1, f"{url}/shares", {"user": world.users["user2"]}, url).status_code == 303
    assert user2.get(url).status_code == 200
    assert b"by_user1 title" in user2.get(f"{base}/records/").data
    # a person it is shared with reads it but cannot change it
    assert user2.get(f"{url}/edit").status_code == 403
    assert _post(user2, f"{url}/shares", {"user": world.users["manager1"]},
                 url).status_code == 403
    removed = _post(user1, f"{url}/shares/{world.users['user2']}/remove", {}, url)
    assert removed.status_code == 303
    assert user2.get(url).status_code == 404


def test_actions_overdue_and_effectiveness(world):
    base = f"/t/{world.slug}"
    record_id = world.records["by_user1"]
    user1 = _client(world, "user1")
    late = (date.today() - timedelta(days=5)).isoformat()
    created = _post(user1, f"{base}/records/{record_id}/actions/new", {
        "title": "Replace gasket", "description": "", "kind": "immediate",
        "owner": world.users["user1"], "due_date": late, "status": "in_progress"})
    assert created.status_code == 303
    action_url = created.headers["Location"]
    action_id = int(action_url.rsplit("/", 1)[1])
    page = user1.get(action_url).get_data(as_text=True)
    assert "Overdue" in page
    # the page's <title> is the action's title, nothing of the page's body
    assert re.search(r"<title>([^<]*)</title>", page).group(1).startswith("Replace gasket")
    assert page.count("<title>") == 1
    record_page = user1.get(f"{base}/records/{record_id}").get_data(as_text=True)
    assert re.search(r"<title>[^<]*by_user1 title[^<]*</title>", record_page)
    overdue = user1.get(f"{base}/actions/?overdue=1&per_page=100").get_data(as_text=True)
    assert "Replace gasket" in overdue
    records = user1.get(f"{base}/records/?overdue=1").get_data(as_text=True)
    assert "by_user1 title" in records and "shared_user1 title" not in records

    # standalone action, not overdue
    standalone = _post(user1, f"{base}/actions/new", {
        "title": "Tidy the bench", "kind": "preventive", "owner": world.users["user1"],
        "due_date": (date.today() + timedelta(days=5)).isoformat(), "status": "planned"})
    assert standalone.status_code == 303
    assert "Tidy the bench" not in user1.get(f"{base}/actions/?overdue=1").get_data(as_text=True)

    # effectiveness: only once done, only by a manager or an admin
    manager = _client(world, "manager1")
    not_done = _post(manager, f"{action_url}/effectiveness", {"effective": "yes"}, action_url)
    assert not_done.status_code == 400
    edited = _post(user1, f"{action_url}/edit", {
        "version": _version(user1, f"{action_url}/edit"),
        "title": "Replace gasket", "kind": "immediate", "owner": world.users["user1"],
        "due_date": late, "status": "done"})
    assert edited.status_code == 303
    assert "Replace gasket" not in user1.get(f"{base}/actions/?overdue=1").get_data(as_text=True)
    assert _post(user1, f"{action_url}/effectiveness", {"effective": "yes"},
                 action_url).status_code == 403
    checked = _post(manager, f"{action_url}/effectiveness",
                    {"effective": "no", "comment": "Leak came back"}, action_url)
    assert checked.status_code == 303
    with world.app.app_context(), world.context():
        from qalitel.records.models import Action
        from tenants.context import tdb

        action = tdb.get(Action, action_id)
        assert action.effective is False and action.effectiveness_comment == "Leak came back"
        assert action.effectiveness_checked_by_id == world.users["manager1"]
        assert action.effectiveness_checked_at is not None and action.completed_at is not None
    assert b"Not effective" in user1.get(action_url).data


def _add_records(world, count, **kw):
    from qalitel.records import service

    with world.app.app_context(), world.context():
        admin = world.user("admin")
        for i in range(count):
            service.create_nonconformity(admin, f"bulk {i:03d}", "", **kw)


def _numbers(html: str) -> list[int]:
    return [int(n) for n in re.findall(r"<td>NC-(\d+)</td>", html)]


def test_list_filters_sort_and_pages(world):
    _add_records(world, 30, severity="major", folder_id=world.folders["General"])
    base = f"/t/{world.slug}/records/"
    admin = _client(world, "admin")
    first = admin.get(base).get_data(as_text=True)
    numbers = _numbers(first)
    assert len(numbers) == 25 and numbers == sorted(numbers, reverse=True)  # default: newest
    for size in (10, 25, 50, 100):
        html = admin.get(base, query_string={"per_page": size}).get_data(as_text=True)
        assert len(_numbers(html)) == min(size, 38)
    second = admin.get(base, query_string={"per_page": 10, "page": 4}).get_data(as_text=True)
    assert len(_numbers(second)) == 8 and "Page 4 of 4" in second
    asc = _numbers(admin.get(base, query_string={"sort": "number", "per_page": 100}).get_data(
        as_text=True))
    assert asc == sorted(asc) and len(asc) == 38
    titles = re.findall(r'">(bulk \d+)</a>', admin.get(
        base, query_string={"sort": "-title", "severity": "major", "per_page": 100}).get_data(
        as_text=True))
    assert titles == sorted(titles, reverse=True) and len(titles) == 30
    by_severity = admin.get(base, query_string={"sort": "-severity", "per_page": 100}).get_data(
        as_text=True)
    assert by_severity.index("other title") < by_severity.index("hr title") < \
        by_severity.index("by_user1 title")  # critical, major, minor
    folder = admin.get(base, query_string={"folder": world.folders["General"],
                                           "per_page": 100}).get_data(as_text=True)
    assert len(_numbers(folder)) == 32  # 30 bulk + assigned_user1 + other
    nofolder = admin.get(base, query_string={"folder": "none", "per_page": 100}).get_data(
        as_text=True)
    assert set(re.findall(r">([a-z_0-9]+) title<", nofolder)) == {
        "by_user1", "shared_user1", "action_user1"}
    user1 = _client(world, "user1")
    mine = user1.get(base, query_string={"assignee": "me"}).get_data(as_text=True)
    assert re.findall(r">([a-z_0-9]+) title<", mine) == ["assigned_user1"]
    assert "38 non-conformities" in admin.get(base, query_string={"status": "active"}).get_data(
        as_text=True)
    assert "0 non-conformities" in admin.get(base, query_string={"status": "closed"}).get_data(
        as_text=True)


def test_list_settings_saved_and_restored(world):
    _add_records(world, 12)
    base = f"/t/{world.slug}/records/"
    admin = _client(world, "admin")
    chosen = admin.get(base, query_string={"severity": "minor", "sort": "title",
                                           "per_page": 10, "q": "bulk"})
    assert chosen.status_code == 200
    saved = _prefs(admin, world)["lists"]["records"]
    assert saved == {"filters": {"severity": "minor"}, "sort": "title", "page_size": 10}
    restored = admin.get(base).get_data(as_text=True)
    assert '<option value="minor" selected>' in restored
    assert '<option value="10" selected>' in restored
    assert len(_numbers(restored)) == 10
    # the list opened without parameters uses the saved sort
    assert re.findall(r'">(by_user1 title|action_user1 title|bulk 000)</a>', restored)[0] == \
        "action_user1 title"
    # the last page seen is remembered for the next sign-in
    admin.get(f"/t/{world.slug}/records/{world.records['hr']}")
    assert _prefs(admin, world)["last"] == f"/t/{world.slug}/records/{world.records['hr']}"
    # reset clears the saved filters
    admin.get(base, query_string={"reset": 1})
    assert _prefs(admin, world)["lists"]["records"]["filters"] == {}


def test_csv_neutralises_formulas(world):
    from qalitel.records import service

    evil = ["=HYPERLINK(\"http://x\")", "+1+1", "-2", "@SUM(A1)", "\tx"]
    with world.app.app_context(), world.context():
        for title in evil:
            service.create_nonconformity(world.user("user1"), f"{title}", f"{title}")
    user1 = _client(world, "user1")
    export = user1.get(f"/t/{world.slug}/records/export.csv", query_string={"sort": "number"})
    assert export.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(export.data.decode("utf-8-sig"))))
    cells = [cell for row in rows[1:] for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t")]
    titles = [row[1] for row in rows[1:]]
    assert "'=HYPERLINK(\"http://x\")" in titles and "'-2" in titles and "'@SUM(A1)" in titles
    # the filtered list only
    filtered = user1.get(f"/t/{world.slug}/records/export.csv", query_string={"q": "SUM"})
    assert len(list(csv.reader(io.StringIO(filtered.data.decode("utf-8-sig"))))) == 2


def test_dashboard_counts_and_chart(world):
    from qalitel.records import service

    today = date.today()
    two_months_ago = (today.replace(day=1) - timedelta(days=40)).replace(day=3)
    with world.app.app_context(), world.context():
        manager = world.user("manager1")
        for _ in range(3):
            service.create_nonconformity(manager, "older", detected_on=two_months_ago)
        record = service.create_nonconformity(manager, "moving", cause_analysis="c")
        service.change_status(manager, record, "analysis")
    client = _client(world, "manager1")
    page = client.get(f"/t/{world.slug}/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "style=" not in html and "<script" not in html
    assert 'href="http' not in html and 'src="http' not in html
    assert "<svg" in html and "<rect" in html
    counts = dict(re.findall(r'records/\?status=(\w+)">\s*<span class="muted">[^<]+</span>\s*'
                             r'<span class="stat">(\d+)</span>', html))
    assert counts["open"] == str(5 + 3) and counts["analysis"] == "1"
    label = format_skeleton("yMMM", two_months_ago.replace(day=1), locale="en")
    assert f"<title>{label}: 3</title>" in html
    this_month = format_skeleton("yMMM", today.replace(day=1), locale="en")
    assert f"<title>{this_month}: {5 + 1}</title>" in html
    chart = html.split('id="chart-title"', 1)[1].split("</svg>", 1)[0]  # not the indicators
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', chart)]
    assert len(heights) == 12 and max(heights) > 0
    overdue = re.search(r"Overdue actions</span><span class=\"stat[^\"]*\">(\d+)", html)
    assert overdue and overdue.group(1) == "2"  # overdue_user1 and standalone_user2


def test_folder_administration(world):
    base = f"/t/{world.slug}"
    manager1, manager2 = _client(world, "manager1"), _client(world, "manager2")
    created = _post(manager1, f"{base}/folders/", {"name": "Audit 2024", "confidential": "y"})
    assert created.status_code == 303
    folder_id = int(created.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    # its creator is cleared; another manager does not even see the folder
    assert b"Audit 2024" in manager1.get(f"{base}/folders/").data
    assert b"Audit 2024" not in manager2.get(f"{base}/folders/").data
    filed = _post(manager1, f"{base}/records/new", {
        "title": "Finding 1", "detected_on": date.today().isoformat(),
        "detected_by": world.users["manager1"], "origin": "audit", "severity": "minor",
        "folder": folder_id, "assignee": 0})
    assert filed.status_code == 303
    record_url = filed.headers["Location"]
    assert manager2.get(record_url).status_code == 404
    # a manager cannot file into a confidential folder they are not cleared for
    refused = _post(manager2, f"{base}/records/new", {
        "title": "Sneaky", "detected_on": date.today().isoformat(),
        "detected_by": world.users["manager2"], "origin": "audit", "severity": "minor",
        "folder": folder_id, "assignee": 0})
    assert refused.status_code == 400
    duplicate = _post(manager1, f"{base}/folders/", {"name": "audit 2024"})
    assert duplicate.status_code == 400 and b"exists already" in duplicate.data
    # clearance through a group
    grant = _post(manager1, f"{base}/folders/{folder_id}/clearances",
                  {"user": 0, "group": 1}, f"{base}/folders/{folder_id}")
    assert grant.status_code == 303
    assert manager2.get(record_url).status_code == 200
    # making a folder public opens it to every manager
    renamed = _post(manager1, f"{base}/folders/{folder_id}",
                    {"name": "Audit 2024 (public)"})
    assert renamed.status_code == 303
    assert _client(world, "manager2").get(record_url).status_code == 200


def test_navigation_links(world):
    user1 = _client(world, "user1")
    html = user1.get(f"/t/{world.slug}/records/").get_data(as_text=True)
    for href in ("/records/", "/actions/"):
        assert f'href="/t/{world.slug}{href}"' in html
    assert f'href="/t/{world.slug}/"' in html
    manager = _client(world, "manager1")
    assert f'href="/t/{world.slug}/folders/"' in manager.get(f"/t/{world.slug}/").get_data(
        as_text=True)


def test_pages_render_in_french(world):
    """French is the default language: every records page renders with its catalogue."""
    client = world.app.test_client()
    assert login(client, world.slug, world.emails["admin"]).status_code == 302
    base = f"/t/{world.slug}"
    record, action = world.records["hr"], world.actions["hr"]
    for path in ("/", "/records/", f"/records/{record}", f"/records/{record}/edit",
                 "/records/new", f"/records/{record}/actions/new", "/actions/",
                 f"/actions/{action}", f"/actions/{action}/edit", "/actions/new", "/folders/",
                 f"/folders/{world.folders['HR']}", "/records/?page=2&per_page=10"):
        page = client.get(base + path)
        assert page.status_code == 200, path
        assert '<html lang="fr"' in page.get_data(as_text=True), path
    html = client.get(f"{base}/records/").get_data(as_text=True)
    assert "Non-conformités" in html and "8 non-conformités" in html


def test_empty_tenant_pages(app, password_hash):
    handle = provision(app, "empty", password_hash, records=0)
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    assert login(client, "empty", handle.user_email).status_code == 302
    dashboard = client.get("/t/empty/").get_data(as_text=True)
    assert "No non-conformity recorded yet." in dashboard and "<svg" in dashboard
    for path in ("/t/empty/records/", "/t/empty/actions/", "/t/empty/records/export.csv",
                 "/t/empty/actions/export.csv"):
        assert client.get(path).status_code == 200, path
    assert "0 non-conformities" in client.get("/t/empty/records/").get_data(as_text=True)
