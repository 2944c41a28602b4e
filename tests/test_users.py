"""User and group administration in the browser, and each user's profile page."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, csrf_token, in_tenant, login

pytestmark = pytest.mark.usefixtures("english_clients")


def admin_client(tt, slug: str = "alpha"):
    client = tt.app.test_client()
    handle = tt.a if slug == "alpha" else tt.b
    assert login(client, slug, handle.admin_email).status_code == 302
    return client


def post_form(client, page: str, url: str | None = None, **data):
    """POST ``data`` to ``url`` (default: ``page``) with a CSRF token read from ``page``."""
    return client.post(url or page, data={"csrf_token": csrf_token(client, page), **data})


def user_row(app, slug: str, email: str):
    from sqlalchemy import func, select

    from qalitel.users.models import User

    with in_tenant(app, slug) as session:
        return session.execute(
            select(User).where(func.lower(User.email) == email.lower())).scalar_one_or_none()


def count_users(app, slug: str) -> int:
    from sqlalchemy import func, select

    from qalitel.users.models import User

    with in_tenant(app, slug) as session:
        return session.execute(select(func.count()).select_from(User)).scalar_one()


# ---------------------------------------------------------------- access


ADMIN_GETS = ("/t/alpha/users/", "/t/alpha/users/new", "/t/alpha/users/1",
              "/t/alpha/users/groups/")


def test_admin_pages_are_forbidden_to_non_admins(two_tenants):
    client = two_tenants.app.test_client()
    login(client, "alpha", two_tenants.a.user_email)
    for url in ADMIN_GETS:
        assert client.get(url).status_code == 403, url
    token = csrf_token(client, "/t/alpha/profile")
    admin_id = two_tenants.a.user_ids["admin"]
    for url, data in ((f"/t/alpha/users/{admin_id}/suspend", {}),
                      (f"/t/alpha/users/{admin_id}", {"name": "x", "profile": "user"}),
                      ("/t/alpha/users/new", {"email": "m@alpha.example", "name": "M",
                                              "profile": "admin"})):
        assert client.post(url, data={"csrf_token": token, **data}).status_code == 403, url
    assert user_row(two_tenants.app, "alpha", two_tenants.a.admin_email).suspended_at is None
    assert user_row(two_tenants.app, "alpha", "m@alpha.example") is None
    # not signed in: sent to the sign-in page
    anonymous = two_tenants.app.test_client()
    response = anonymous.get("/t/alpha/users/")
    assert response.status_code == 302 and "/t/alpha/login" in response.headers["Location"]


def test_forged_ids_from_another_tenant_are_404(two_tenants, password_hash):
    from qalitel.users.models import User
    from qalitel.users.service import create_group

    with in_tenant(two_tenants.app, "bravo") as session:
        extra = User(email="only@bravo.example", name="Only Bravo", password_hash=password_hash)
        session.add(extra)
        session.commit()
        bravo_user = extra.id
        bravo_group = create_group("Bravo only").id
        session.commit()
    client = admin_client(two_tenants)
    assert client.get(f"/t/alpha/users/{bravo_user}").status_code == 404
    assert client.get(f"/t/alpha/users/groups/{bravo_group}").status_code == 404
    token = csrf_token(client, "/t/alpha/users/")
    for url in (f"/t/alpha/users/{bravo_user}/suspend", f"/t/alpha/users/{bravo_user}/send-reset",
                f"/t/alpha/users/groups/{bravo_group}/delete"):
        assert client.post(url, data={"csrf_token": token}).status_code == 404, url
    assert user_row(two_tenants.app, "bravo", "only@bravo.example").suspended_at is None
    assert "Only Bravo" not in client.get("/t/alpha/users/").get_data(as_text=True)
    for huge in ("99999999999999999999999", "2147483648", "0"):
        assert client.get(f"/t/alpha/users/{huge}").status_code == 404, huge
        assert client.get(f"/t/alpha/users/groups/{huge}").status_code == 404, huge


# ---------------------------------------------------------------- users


def test_admin_creates_a_user_who_can_sign_in(two_tenants):
    client = admin_client(two_tenants)
    response = post_form(client, "/t/alpha/users/new", email=" New.Person@Alpha.example ",
                         name="New Person", profile="manager", password="a fresh password")
    assert response.status_code == 302
    row = user_row(two_tenants.app, "alpha", "new.person@alpha.example")
    assert row.email == "new.person@alpha.example" and row.profile.value == "manager"
    assert row.password_hash.startswith("scrypt:")
    listing = client.get("/t/alpha/users/").get_data(as_text=True)
    assert "New Person" in listing and "Manager" in listing
    newcomer = two_tenants.app.test_client()
    assert login(newcomer, "alpha", "new.person@alpha.example",
                 "a fresh password").status_code == 302
    assert user_row(two_tenants.app, "bravo", "new.person@alpha.example") is None


def test_duplicate_email_is_refused(two_tenants):
    client = admin_client(two_tenants)
    before = count_users(two_tenants.app, "alpha")
    response = post_form(client, "/t/alpha/users/new", email="USER@alpha.example",
                         name="Again", profile="user", password="a fresh password")
    assert response.status_code == 400
    assert "already exists" in response.get_data(as_text=True)
    assert count_users(two_tenants.app, "alpha") == before


BAD_CREATIONS = [
    ("email", "x" * 300 + "@alpha.example"),
    ("email", "not-an-email"),
    ("email", "a@b.example\r\nBcc: victim@else.example"),
    ("name", "N" * 201),
    ("name", ""),
    ("name", "tab\tinside"),
    ("password", "short"),
    ("password", "p" * 300),
    ("profile", "superuser"),
    ("groups", "424242"),
]


def test_bad_input_on_user_creation(two_tenants):
    client = admin_client(two_tenants)
    before = count_users(two_tenants.app, "alpha")
    for field, value in BAD_CREATIONS:
        data = {"email": "fresh@alpha.example", "name": "Fresh", "profile": "user",
                "password": "a fresh password", field: value}
        response = post_form(client, "/t/alpha/users/new", **data)
        assert response.status_code == 400, (field, value)
    assert count_users(two_tenants.app, "alpha") == before


def test_names_with_html_are_escaped_everywhere(two_tenants):
    client = admin_client(two_tenants)
    uid = two_tenants.a.user_ids["user"]
    evil = '<img src=x onerror=alert(1)><script>alert("n")</script>'
    response = post_form(client, f"/t/alpha/users/{uid}", name=evil, profile="user")
    assert response.status_code == 302
    assert user_row(two_tenants.app, "alpha", two_tenants.a.user_email).name == evil
    for url in ("/t/alpha/users/", f"/t/alpha/users/{uid}"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, url
        assert "&lt;script&gt;" in html, url
    post_form(client, "/t/alpha/users/groups/", name="<b>bold</b> group")
    html = client.get("/t/alpha/users/groups/").get_data(as_text=True)
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt; group" in html


def test_oversize_name_on_edit_changes_nothing(two_tenants):
    client = admin_client(two_tenants)
    uid = two_tenants.a.user_ids["user"]
    response = post_form(client, f"/t/alpha/users/{uid}", name="N" * 5000, profile="admin")
    assert response.status_code == 400
    row = user_row(two_tenants.app, "alpha", two_tenants.a.user_email)
    assert row.name == "User alpha" and row.profile.value == "user"


def test_suspend_ends_sessions_at_once_and_reactivate_restores_access(two_tenants):
    app = two_tenants.app
    victim = app.test_client()
    login(victim, "alpha", two_tenants.a.user_email)
    assert victim.get("/t/alpha/records/").status_code == 200
    client = admin_client(two_tenants)
    uid = two_tenants.a.user_ids["user"]
    page = f"/t/alpha/users/{uid}"
    assert post_form(client, page, f"{page}/suspend").status_code == 302
    assert user_row(app, "alpha", two_tenants.a.user_email).suspended_at is not None
    assert victim.get("/t/alpha/records/").status_code == 302
    assert login(victim, "alpha", two_tenants.a.user_email).status_code == 403
    assert "Suspended" in client.get("/t/alpha/users/").get_data(as_text=True)
    assert post_form(client, page, f"{page}/reactivate").status_code == 302
    assert login(victim, "alpha", two_tenants.a.user_email).status_code == 302
    assert victim.get("/t/alpha/records/").status_code == 200


def test_last_active_admin_cannot_suspend_or_demote_themselves(two_tenants):
    app = two_tenants.app
    client = admin_client(two_tenants)
    me = two_tenants.a.user_ids["admin"]
    page = f"/t/alpha/users/{me}"
    response = post_form(client, page, name="Admin alpha", profile="manager")
    assert response.status_code == 409
    assert "last active administrator" in response.get_data(as_text=True)
    response = post_form(client, page, f"{page}/suspend")
    assert response.status_code == 302
    assert "last active administrator" in client.get(page).get_data(as_text=True)
    row = user_row(app, "alpha", two_tenants.a.admin_email)
    assert row.profile.value == "admin" and row.suspended_at is None
    # a second admin, suspended, does not count; active, it does
    other = two_tenants.a.user_ids["user"]
    post_form(client, f"/t/alpha/users/{other}", name="User alpha", profile="admin")
    post_form(client, f"/t/alpha/users/{other}", f"/t/alpha/users/{other}/suspend")
    assert post_form(client, page, name="Admin alpha", profile="user").status_code == 409
    post_form(client, f"/t/alpha/users/{other}", f"/t/alpha/users/{other}/reactivate")
    assert post_form(client, page, name="Admin alpha", profile="user").status_code == 302
    assert user_row(app, "alpha", two_tenants.a.admin_email).profile.value == "user"
    assert client.get("/t/alpha/users/").status_code == 403  # no longer an admin


def test_an_admin_may_suspend_themselves_when_another_admin_remains(two_tenants):
    app = two_tenants.app
    client = admin_client(two_tenants)
    other = two_tenants.a.user_ids["user"]
    post_form(client, f"/t/alpha/users/{other}", name="User alpha", profile="admin")
    me = two_tenants.a.user_ids["admin"]
    response = post_form(client, f"/t/alpha/users/{me}", f"/t/alpha/users/{me}/suspend")
    assert response.status_code == 302 and response.headers["Location"] == "/t/alpha/login"
    assert client.get("/t/alpha/records/").status_code == 302
    assert user_row(app, "alpha", two_tenants.a.admin_email).suspended_at is not None


# ---------------------------------------------------------------- groups


def test_groups_and_memberships(two_tenants):
    app = two_tenants.app
    client = admin_client(two_tenants)
    response = post_form(client, "/t/alpha/users/groups/", name="Quality team")
    assert response.status_code == 302
    group_page = response.headers["Location"]
    group_id = int(group_page.rstrip("/").rsplit("/", 1)[1])
    dup = post_form(client, "/t/alpha/users/groups/", name="quality TEAM")
    assert dup.status_code == 409 and "already exists" in dup.get_data(as_text=True)
    assert post_form(client, "/t/alpha/users/groups/", name="G" * 101).status_code == 400
    uid, admin = two_tenants.a.user_ids["user"], two_tenants.a.user_ids["admin"]
    # membership from the user's page
    response = post_form(client, f"/t/alpha/users/{uid}", name="User alpha", profile="user",
                         groups=str(group_id))
    assert response.status_code == 302
    assert "Quality team" in client.get("/t/alpha/users/").get_data(as_text=True)
    # membership from the group's page, renamed on the way
    response = client.post(group_page, data={"csrf_token": csrf_token(client, group_page),
                                             "name": "Quality", "members": [str(uid), str(admin)]})
    assert response.status_code == 302
    from qalitel.users.models import Group
    from qalitel.users.service import member_ids

    with in_tenant(app, "alpha") as session:
        group = session.get(Group, group_id)
        assert group.name == "Quality" and sorted(member_ids(group)) == sorted([uid, admin])
    # a forged group id in the checkboxes is refused
    response = post_form(client, f"/t/alpha/users/{uid}", name="User alpha", profile="user",
                         groups="999999")
    assert response.status_code == 400
    # the member sees their group on their profile
    member = two_tenants.app.test_client()
    login(member, "alpha", two_tenants.a.user_email)
    assert "Quality" in member.get("/t/alpha/profile").get_data(as_text=True)
    # deleting the group removes memberships, not users
    response = post_form(client, group_page, f"{group_page}/delete")
    assert response.status_code == 302
    with in_tenant(app, "alpha") as session:
        assert session.get(Group, group_id) is None
    assert user_row(app, "alpha", two_tenants.a.user_email) is not None


# ---------------------------------------------------------------- own profile


def test_user_changes_own_name(two_tenants):
    client = two_tenants.app.test_client()
    login(client, "alpha", two_tenants.a.user_email)
    response = post_form(client, "/t/alpha/profile", "/t/alpha/profile/name", name="  Ursula  ")
    assert response.status_code == 302
    assert user_row(two_tenants.app, "alpha", two_tenants.a.user_email).name == "Ursula"
    assert post_form(client, "/t/alpha/profile", "/t/alpha/profile/name",
                     name="x" * 201).status_code == 400
    assert post_form(client, "/t/alpha/profile", "/t/alpha/profile/name",
                     name="bad\x07name").status_code == 400
    assert user_row(two_tenants.app, "alpha", two_tenants.a.user_email).name == "Ursula"


def test_user_changes_own_password(two_tenants):
    app = two_tenants.app
    email = two_tenants.a.user_email
    client, other_device = app.test_client(), app.test_client()
    login(client, "alpha", email, remember="y")
    login(other_device, "alpha", email)
    url = "/t/alpha/profile/password"
    wrong = post_form(client, "/t/alpha/profile", url, current="not it",
                      password="the new password", confirm="the new password")
    assert wrong.status_code == 400 and "current password is wrong" in wrong.get_data(
        as_text=True)
    mismatch = post_form(client, "/t/alpha/profile", url, current=PASSWORD,
                         password="the new password", confirm="another one!!")
    assert mismatch.status_code == 400
    short = post_form(client, "/t/alpha/profile", url, current=PASSWORD,
                      password="short", confirm="short")
    assert short.status_code == 400
    response = post_form(client, "/t/alpha/profile", url, current=PASSWORD,
                         password="the new password", confirm="the new password")
    assert response.status_code == 302
    assert "qalitel_remember" in str(response.headers.getlist("Set-Cookie"))
    # this session goes on (and its remember cookie was renewed), the other device is out
    assert client.get("/t/alpha/records/").status_code == 200
    client.delete_cookie("qalitel_session")
    assert client.get("/t/alpha/records/").status_code == 200
    assert other_device.get("/t/alpha/records/").status_code == 302
    assert login(app.test_client(), "alpha", email).status_code == 401
    assert login(app.test_client(), "alpha", email, "the new password").status_code == 302
