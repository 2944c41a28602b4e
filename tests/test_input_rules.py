"""One rule per kind of input (core.validation), used everywhere: a NUL byte, another control
character or an oversize value is a clear 4xx on every form of records, users and sign-in,
on both backends (PostgreSQL refuses NUL in text: it must never get there); one password
rule for the CLI, user creation, reset and sign-in."""

from __future__ import annotations

import pytest

from core import validation
from tests.conftest import PASSWORD, csrf_token, login, provision
from tests.records_world import build_world, client_for

pytestmark = pytest.mark.usefixtures("english_clients")

BAD_TEXT = ["a\x00b", "a\x1b[31mb", "a\u202eb", "a\u200bb"]


# ---------------------------------------------------------------- the rules themselves


@pytest.mark.parametrize("raw", ["ada@example.org", " Ada@Example.ORG "])
def test_email_rule_accepts_and_normalises(raw):
    assert validation.check_email(raw) == "ada@example.org"


@pytest.mark.parametrize("raw", ["", "ada", "ada@", "@example.org", "a\x00@example.org",
                                 "ada@exa mple.org", "a" * 250 + "@example.org", None, 42,
                                 "ada@exam\x00ple.org", "ada@localhost"])
def test_email_rule_refuses(raw):
    with pytest.raises(validation.InvalidInput):
        validation.check_email(raw)
    assert validation.email_or_none(raw) is None


def test_name_text_and_password_rules():
    assert validation.check_name("  Ada Lovelace ") == "Ada Lovelace"
    for bad in [*BAD_TEXT, "", "   ", "x" * 201, None]:
        with pytest.raises(validation.InvalidInput):
            validation.check_name(bad)
    assert validation.check_text("line\r\n\tnext", 100) == "line\r\n\tnext"
    for bad in BAD_TEXT:
        with pytest.raises(validation.InvalidInput):
            validation.check_text(bad, 100)
    assert validation.check_password("x" * 10) and validation.check_password("x" * 256)
    for bad in ("x" * 9, "x" * 257, "correct horse\x00battery", None):
        with pytest.raises(validation.InvalidInput):
            validation.check_password(bad)
    assert validation.password_candidate("x" * 256) and not validation.password_candidate("x" * 257)


def test_id_and_redirect_rules():
    assert [validation.id_or_none(v) for v in ("1", "2147483647", 7)] == [1, 2**31 - 1, 7]
    for bad in ("0", "-1", "2147483648", "1e3", "١", "", None, True, 2**31, " 1"):
        assert validation.id_or_none(bad) is None, bad
    prefix = "/t/acme/"
    assert validation.safe_redirect("/t/acme/records/?page=2&sort=-number", prefix)
    for bad in ("//evil.example/", "https://evil.example/t/acme/", "/t/bravo/", "/t/acme/\\x",
                "/t/acme/../bravo/", "/t/acme//evil", "/t/acme/a b", "/t/acme/\x00",
                "/t/acme/#x", "/t/acme/" + "a" * 3000, None, ""):
        assert validation.safe_redirect(bad, prefix) is None, bad


# ---------------------------------------------------------------- every form, both backends


@pytest.fixture
def world(app, password_hash):
    return build_world(app, password_hash)


def _post(client, url, data, token_url=None):
    return client.post(url, data={"csrf_token": csrf_token(client, token_url or url), **data})


def test_nul_in_sign_in_and_forgot_password_is_a_400(world):
    base = f"/t/{world.slug}"
    client = world.app.test_client()
    for email in ("user1\x00@acme.example", world.emails["user1"] + "\x00"):
        response = _post(client, f"{base}/login", {"email": email, "password": PASSWORD})
        assert response.status_code == 400, email
        assert "Enter a valid email address." in response.get_data(as_text=True)
        forgot = _post(client, f"{base}/password/forgot", {"email": email})
        assert forgot.status_code == 400, email
    assert client.get(f"{base}/records/").status_code == 302  # nobody signed in
    # a NUL in the password is just a wrong password
    response = _post(client, f"{base}/login", {"email": world.emails["user1"],
                                               "password": PASSWORD + "\x00"})
    assert response.status_code == 401


@pytest.mark.parametrize("bad", BAD_TEXT)
def test_control_characters_are_refused_on_every_users_form(world, bad):
    from qalitel.users.models import Group, User
    from tenants.context import tdb

    admin = client_for(world, "admin")
    base = f"/t/{world.slug}"
    new = f"{base}/users/new"
    for data in ({"email": f"x{bad}@acme.example", "name": "X"},
                 {"email": "x@acme.example", "name": f"X{bad}"}):
        response = _post(admin, new, {"profile": "user", "password": "", **data})
        assert response.status_code == 400, data
    assert _post(admin, f"{base}/users/groups/", {"name": f"G{bad}"}).status_code == 400
    edit = f"{base}/users/{world.users['user1']}"
    assert _post(admin, edit, {"name": f"U{bad}", "profile": "user"}).status_code == 400
    own = client_for(world, "user1")
    assert _post(own, f"{base}/profile/name", {"name": f"Me{bad}"},
                 f"{base}/profile").status_code == 400
    with world.app.app_context(), world.context():
        assert tdb.query(User).filter(User.email == "x@acme.example").count() == 0
        assert tdb.query(Group).count() == 1
        assert world.user("user1").name == f"User {world.slug}"


@pytest.mark.parametrize("bad", BAD_TEXT)
def test_control_characters_are_refused_on_every_records_form(world, bad):
    from qalitel.records.models import Action, Folder, NonConformity
    from tenants.context import tdb

    base = f"/t/{world.slug}"
    manager = client_for(world, "manager1")
    record = {"title": "Leak", "description": "", "detected_on": "2024-05-02",
              "detected_by": world.users["manager1"], "origin": "internal",
              "severity": "minor", "folder": "0", "assignee": "0", "cause_analysis": ""}
    for field in ("title", "description", "cause_analysis"):
        response = _post(manager, f"{base}/records/new", {**record, field: f"x{bad}y"})
        assert response.status_code == 400, field
    record_url = f"{base}/records/{world.records['other']}"
    assert _post(manager, f"{record_url}/edit", {**record, "title": f"x{bad}"}).status_code == 400
    assert _post(manager, f"{record_url}/status", {"to_status": "analysis",
                                                   "comment": f"c{bad}"},
                 record_url).status_code == 400
    action = {"title": "Fix", "description": "", "kind": "corrective",
              "owner": world.users["manager1"], "due_date": "", "status": "planned"}
    for field in ("title", "description"):
        assert _post(manager, f"{base}/actions/new", {**action, field: f"Zq{bad}"},
                     ).status_code == 400, field
    assert _post(manager, f"{base}/folders/", {"name": f"F{bad}"}).status_code == 400
    search = manager.get(f"{base}/records/", query_string={"q": f"title{bad}"})
    assert search.status_code == 200
    with world.app.app_context(), world.context():
        assert tdb.query(NonConformity).filter(NonConformity.title.like("x%")).count() == 0
        assert tdb.query(Action).filter(Action.title.like("Zq%")).count() == 0
        assert tdb.query(Folder).count() == 3


def test_oversize_values_are_refused(world):
    base = f"/t/{world.slug}"
    admin = client_for(world, "admin")
    new = f"{base}/users/new"
    for data in ({"email": "a" * 250 + "@acme.example", "name": "X"},
                 {"email": "x@acme.example", "name": "X" * 201},
                 {"email": "x@acme.example", "name": "X", "password": "p" * 257}):
        response = _post(admin, new, {"profile": "user", "password": "", **data})
        assert response.status_code == 400, data
    assert _post(admin, f"{base}/users/groups/", {"name": "G" * 101}).status_code == 400
    assert _post(admin, f"{base}/folders/", {"name": "F" * 101}).status_code == 400
    huge = admin.post(f"{base}/folders/", data={"name": "x" * (3 * 1024 * 1024)})
    assert huge.status_code == 413
    for url in (f"{base}/records/99999999999", f"{base}/actions/2147483648",
                f"{base}/users/99999999999", f"{base}/users/groups/2147483648"):
        assert admin.get(url).status_code == 404, url


def test_reset_page_applies_the_password_rule(world):
    from qalitel.auth.service import RESET, make_token

    with world.app.test_request_context(f"/t/{world.slug}/"), world.context():
        token = make_token(world.user("user1"), RESET)
    url = f"/t/{world.slug}/password/reset/{token}"
    client = world.app.test_client()
    for bad in ("short", "p" * 257, "correct horse\x00battery staple"):
        response = _post(client, url, {"password": bad, "confirm": bad})
        assert response.status_code == 400, bad
    assert login(client, world.slug, world.emails["user1"]).status_code == 302


# ---------------------------------------------------------------- CLI and sign-in agree


def test_cli_password_rule_is_the_sign_in_rule(app):
    runner = app.test_cli_runner()

    def create(slug: str, password: str):
        return runner.invoke(args=["tenants", "create", "--name", slug.title(),
                                   "--admin-email", f"admin@{slug}.example",
                                   "--admin-password", password, "--", slug])

    refused = create("toolong", "p" * 300)
    assert refused.exit_code != 0 and "at most 256 characters" in refused.output
    longest = "p" * validation.PASSWORD_MAX
    made = create("longest", longest)
    assert made.exit_code == 0, made.output
    assert login(app.test_client(), "longest", "admin@longest.example",
                 longest).status_code == 302
    from core.db import db
    from tenants.registry import Tenant

    with app.app_context():
        assert db.session.query(Tenant).filter_by(slug="toolong").count() == 0


def test_provisioning_applies_the_password_rule(app, password_hash):
    from tenants.provisioning import ProvisioningError

    with pytest.raises(ProvisioningError, match="at most 256"), app.app_context():
        from tenants.provisioning import create_tenant

        create_tenant(app.extensions["qalitel_settings"], "toolong", "Too Long",
                      "admin@toolong.example", "p" * 300)
    provision(app, "fine", password_hash)
