"""`qalitel demo` (what `make run` calls): sample data once, then nothing more; its pages.

The demo is the embedded default, so these tests are about SQLite (tenant and platform).
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime

import pytest

from qalitel import create_app
from qalitel import demo_data as data
from tests.conftest import csrf_token

ACCOUNT_RE = re.compile(r"^\s+client \w+\s+(\S+@\S+)\s+(\S+)$", re.M)
CONFIDENTIAL_TITLES = [r.title for r in data.RECORDS if r.folder == data.CONFIDENTIAL]


def demo_app(tmp_path):
    app = create_app({"instance_dir": tmp_path / "instance", "tenant_server_url": "",
                      "secret_key": "demo-test-secret"})
    app.config["MAIL_BACKGROUND"] = False  # the request's e-mail fails at once (no SMTP)
    return app


def dispose(app) -> None:
    with app.app_context():
        app.extensions["qalitel_engines"].clear()


def snapshot(path) -> dict[str, list[tuple]]:
    """Every row of every table of one SQLite file (read-only)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        tables = [name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {table: sorted(map(repr, conn.execute(f'SELECT * FROM "{table}"')))
                for table in tables}


@pytest.fixture
def demo(tmp_path):
    app = demo_app(tmp_path)
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    yield app, result.output
    dispose(app)


def test_demo_created_once_and_serves_login(demo, tmp_path):
    app, output = demo
    assert "admin@demo.example" in output and "user@demo.example" in output
    second = app.test_cli_runner().invoke(args=["demo"])
    assert second.exit_code == 0 and "exists" in second.output
    assert "admin@demo.example" not in second.output
    assert app.test_client().get("/t/demo/login").status_code == 200
    assert (tmp_path / "instance" / "tenants" / "demo.sqlite3").exists()
    assert (tmp_path / "instance" / "platform.sqlite3").exists()


def test_a_second_run_adds_and_changes_nothing(demo, tmp_path):
    app, _output = demo
    instance = tmp_path / "instance"
    before = {"tenant": snapshot(instance / "tenants" / "demo.sqlite3"),
              "platform": snapshot(instance / "platform.sqlite3")}
    assert len(before["tenant"]["nonconformities"]) == len(data.RECORDS) == 40
    again = app.test_cli_runner().invoke(args=["demo"])
    assert again.exit_code == 0, again.output
    after = {"tenant": snapshot(instance / "tenants" / "demo.sqlite3"),
             "platform": snapshot(instance / "platform.sqlite3")}
    assert after == before


def test_demo_data_covers_the_workflow(demo):
    from sqlalchemy import func, select

    from qalitel.records.models import (
        STATUSES,
        Action,
        Folder,
        NonConformity,
        RecordHistory,
        StatusChange,
    )
    from qalitel.users.models import User
    from tenants.context import tenant_context
    from tenants.resolution import load_tenant

    app, _output = demo
    today = datetime.now(UTC).date()
    with app.app_context(), tenant_context(load_tenant("demo")) as ctx:
        session = ctx.session
        statuses = dict(session.execute(select(NonConformity.status, func.count())
                                        .group_by(NonConformity.status)).all())
        assert set(statuses) == set(STATUSES) and sum(statuses.values()) == 40
        folders = session.execute(select(Folder.name, Folder.confidential)).all()
        assert len(folders) == 5 and [n for n, c in folders if c] == [data.CONFIDENTIAL]
        profiles = [u.profile.value for u in session.execute(select(User)).scalars()]
        assert {p: profiles.count(p) for p in set(profiles)} == {
            "admin": 1, "manager": 2, "user": 3}
        actions = list(session.execute(select(Action)).scalars())
        overdue = [a for a in actions if a.is_overdue]
        assert len(actions) > 60 and len(overdue) >= 5
        assert all(a.due_date < today for a in overdue)
        # the history is the service's: every step with its comment, edits with old values
        steps = session.execute(select(StatusChange)).scalars().all()
        assert len([s for s in steps if s.from_status is None]) == 40
        assert any(s.from_status == "verification" and s.to_status == "treatment"
                   for s in steps)
        fields = set(session.execute(select(RecordHistory.field)).scalars())
        assert {"status", "cause_analysis", "severity", "assignee", "shared_with"} <= fields
        oldest = session.execute(select(func.min(NonConformity.detected_on))).scalar()
        assert (today - oldest).days >= 100  # dates relative to the day of the run


def sign_in(app, email: str, password: str):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    token = csrf_token(client, "/t/demo/login")
    response = client.post("/t/demo/login", data={"email": email, "password": password,
                                                  "csrf_token": token})
    assert response.status_code == 302, (email, response.status_code)
    return client


def records_page(client) -> str:
    page = client.get("/t/demo/records/?per_page=50")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_demo_pages_answer_with_data(demo):
    from html import unescape

    app, output = demo
    passwords = dict(ACCOUNT_RE.findall(output))
    assert len(passwords) == 6

    admin = sign_in(app, "admin@demo.example", passwords["admin@demo.example"])
    listing = records_page(admin)
    assert "40 non-conformities" in listing
    assert len(set(re.findall(r"NC-\d+", listing))) == 40
    requests = unescape(admin.get("/t/demo/maintenance/").get_data(as_text=True))
    assert data.REQUEST_TICKET in requests and data.ENGINEER[1] in requests
    assert "/approve" in requests

    user = unescape(records_page(sign_in(app, "user@demo.example",
                                         passwords["user@demo.example"])))
    assert re.search(r"\b\d+ non-conformities", user) and "NC-" in user
    assert not any(title in user for title in CONFIDENTIAL_TITLES)
    assert data.CONFIDENTIAL not in user
    assert "Étiquetage erroné de palettes expédiées" in user  # shared with him

    cleared = unescape(records_page(sign_in(app, "qualite@demo.example",
                                            passwords["qualite@demo.example"])))
    assert all(title in cleared for title in CONFIDENTIAL_TITLES) and data.CONFIDENTIAL in cleared
    uncleared = unescape(records_page(sign_in(app, "production@demo.example",
                                              passwords["production@demo.example"])))
    assert not any(title in uncleared for title in CONFIDENTIAL_TITLES)
    assert "non-conformities" in uncleared


def test_the_demo_engineer_signs_in_and_sees_the_pending_request(demo):
    from urllib.parse import parse_qs, urlsplit

    import pyotp

    app, output = demo
    email = data.ENGINEER[0]
    password = re.search(rf"^\s+{re.escape(email)}\s+(\S+)$", output, re.M).group(1)
    uri = re.search(r"otpauth://\S+", output).group(0)
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    client = app.test_client()
    token = csrf_token(client, "/staff/login")
    response = client.post("/staff/login", data={
        "email": email, "password": password, "code": pyotp.TOTP(secret).now(),
        "csrf_token": token})
    assert response.status_code == 302
    page = client.get("/staff/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    request_id = re.search(r"maintenance request (\S+) waits", output).group(1)
    assert request_id[:8] in page and data.REQUEST_TICKET in page and "pending" in page


def test_demo_records_carry_the_record_fields(demo):
    from sqlalchemy import func, select

    from qalitel.records.field_models import CatalogEntry, RecordAnalysis
    from qalitel.records.models import NonConformity, RecordHistory
    from tenants.context import tenant_context
    from tenants.resolution import load_tenant

    app, _output = demo
    with app.app_context(), tenant_context(load_tenant("demo")) as ctx:
        session = ctx.session
        kinds = dict(session.execute(select(CatalogEntry.kind, func.count())
                                     .group_by(CatalogEntry.kind)).all())
        assert set(kinds) == {"product", "process", "customer", "supplier"}
        archived = session.execute(select(CatalogEntry.id).where(
            CatalogEntry.archived.is_(True))).scalars().all()
        assert len(archived) == 1
        assert session.execute(select(func.count()).select_from(NonConformity).where(
            NonConformity.product_id == archived[0])).scalar() > 0
        assert session.execute(select(func.count()).select_from(NonConformity).where(
            NonConformity.nq_cost.is_(None))).scalar() == 0
        assert session.execute(select(func.count()).select_from(NonConformity).where(
            NonConformity.partner_id.is_not(None))).scalar() > 0
        analysed = session.execute(select(func.count()).select_from(RecordAnalysis)).scalar()
        assert analysed == sum(1 for r in data.RECORDS if r.cause)
        assert session.execute(select(func.count()).select_from(RecordHistory).where(
            RecordHistory.field == "main_cause")).scalar() == analysed
