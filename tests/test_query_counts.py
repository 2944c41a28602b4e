"""How many SQL statements one signed-in GET of a main page issues, on the tenant and on the
platform database, on both backends.

The same page with 5 and with 25 of everything it lists (records, actions, users, folders,
shares, comments) issues the same number of statements: a page that loads a row's assignee,
author or folder one query at a time (N+1) fails here. The counts are also pinned to a bound
per page, so a new per-request query is a decision, not an accident.

Statements are counted on the client side (SQLAlchemy's ``before_cursor_execute`` on every
engine), the platform's engine told apart from the tenant's; the transaction's own
``BEGIN``/``COMMIT`` are not statements of the cursor and are not counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.conftest import in_tenant, login, provision

# One signed-in admin's GET of each page (the lists ask for 50 a page, so their first page is
# not full and needs no count: core.pagination): (tenant statements, platform statements) on SQLite
# and on PostgreSQL. The platform's share: the tenant row (plus, on PostgreSQL, its database
# server, read with it in one statement) and the maintenance banner's pending count; the
# tenant's starts with the user.
EXPECTED = {
    "sqlite": {
        "dashboard": (11, 2), "records": (3, 2), "record": (10, 2), "actions": (3, 2),
        "folders": (3, 2), "users": (3, 2), "preferences": (4, 2), "my_data": (36, 9),
        "profile": (2, 2)},
    "postgresql": {
        "dashboard": (11, 2), "records": (3, 2), "record": (10, 2), "actions": (3, 2),
        "folders": (3, 2), "users": (3, 2), "preferences": (4, 2), "my_data": (36, 7),
        "profile": (2, 2)},
}
# A plain user's record list: the user, the page's total, its rows, the assignee and folder
# choices (one statement); on the platform, the tenant and its server (no banner shown).
USER_LIST = {"sqlite": (4, 1), "postgresql": (4, 1)}


@contextmanager
def counting(app: Flask) -> Iterator[Counter]:
    """Count the statements sent while the block runs, by database (tenant / platform)."""
    from core.db import db

    with app.app_context():
        platform_engine = db.engine
    seen: Counter = Counter()

    def count(conn, _cursor, _statement, *_args) -> None:
        seen["platform" if conn.engine is platform_engine else "tenant"] += 1

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", count)


def add_rows(app: Flask, slug: str, password_hash: str, count: int, first: int,
             assignee: str | None = None) -> int:
    """``count`` more of everything the pages list: users, folders, records assigned to and
    detected by other people, in folders, shared, with actions owned by others and comments.
    ``assignee``: the e-mail of the person every record is assigned to (else others).
    Returns one record's id."""
    from qalitel.records.models import Folder, RecordShare
    from qalitel.records.service import create_action, create_nonconformity
    from qalitel.users.models import Profile, User

    with in_tenant(app, slug) as session:
        admin = session.query(User).filter_by(profile=Profile.ADMIN).order_by(User.id).first()
        people = [User(email=f"p{first + i}@{slug}.example", name=f"Person {first + i:03d}",
                       password_hash=password_hash,
                       profile=Profile.MANAGER if i % 3 == 0 else Profile.USER)
                  for i in range(count)]
        folders = [Folder(name=f"Folder {first + i:03d}", confidential=i % 4 == 0)
                   for i in range(count)]
        session.add_all(people + folders)
        session.flush()
        named = session.query(User).filter_by(email=assignee).one() if assignee else None
        record_id = 0
        for i in range(count):
            person, folder = people[i], folders[i]
            record = create_nonconformity(
                admin, f"Record {first + i}", "text", detected_by_id=person.id,
                folder_id=folder.id, assignee_id=(named or people[-1 - i]).id, severity="major",
                detected_on=date.today() - timedelta(days=i))
            create_action(admin, f"Action {first + i}", record=record, owner_id=person.id,
                          due_date=date.today() - timedelta(days=1))
            session.add(RecordShare(record_id=record.id, user_id=people[i - 1].id))
            record_id = record.id
        session.commit()
    return record_id


def pages(slug: str, record_id: int) -> dict[str, str]:
    base = f"/t/{slug}"
    return {"dashboard": f"{base}/", "records": f"{base}/records/?per_page=50",
            "record": f"{base}/records/{record_id}", "actions": f"{base}/actions/?per_page=50",
            "folders": f"{base}/folders/", "users": f"{base}/users/",
            "preferences": f"{base}/preferences", "my_data": f"{base}/my-data",
            "profile": f"{base}/profile"}


def statements(app: Flask, client, url: str) -> tuple[int, int]:
    client.get(url)  # warm: engine, pool, compiled statements, templates
    with counting(app) as seen:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return seen["tenant"], seen["platform"]


@pytest.fixture
def world(platform_app, password_hash):
    app = platform_app
    tenant = provision(app, "counted", password_hash, records=0)
    record_id = add_rows(app, tenant.slug, password_hash, 5, first=0)
    client = app.test_client()
    login(client, tenant.slug, tenant.admin_email)
    return app, tenant, client, record_id


def test_main_pages_issue_the_same_statements_for_5_and_25_rows(world, backend, password_hash):
    app, tenant, client, record_id = world
    few = {name: statements(app, client, url)
           for name, url in pages(tenant.slug, record_id).items()}
    record_id = add_rows(app, tenant.slug, password_hash, 20, first=5)
    many = {name: statements(app, client, url)
            for name, url in pages(tenant.slug, record_id).items()}
    assert many == few
    assert few == EXPECTED[backend]


def test_a_plain_users_list_of_25_rows_issues_5_statements(world, backend, password_hash):
    """Visibility clauses, 25 rows shown of 30: as many statements as for 5 rows."""
    app, tenant, _client, _record_id = world
    add_rows(app, tenant.slug, password_hash, 30, first=5, assignee=tenant.user_email)
    client = app.test_client()
    login(client, tenant.slug, tenant.user_email)
    url = f"/t/{tenant.slug}/records/"
    assert client.get(url).get_data(as_text=True).count("<td>NC-") == 25
    assert statements(app, client, url) == USER_LIST[backend]


def crowd_record(app: Flask, slug: str, record_id: int, password_hash: str, count: int,
                 first: int) -> None:
    """``count`` more people around one record: each shares it, changed a field of it and
    moved its status, so its page names ``count`` more people in each of those lists."""
    from qalitel.records.models import RecordHistory, RecordShare, StatusChange
    from qalitel.users.models import Profile, User

    with in_tenant(app, slug) as session:
        people = [User(email=f"c{first + i}@{slug}.example", name=f"Crowd {first + i:03d}",
                       password_hash=password_hash, profile=Profile.USER)
                  for i in range(count)]
        session.add_all(people)
        session.flush()
        for person in people:
            session.add_all([
                RecordShare(record_id=record_id, user_id=person.id),
                RecordHistory(record_id=record_id, user_id=person.id, field="title",
                              old_value="a", new_value="b"),
                StatusChange(record_id=record_id, from_status="open", to_status="open",
                             changed_by_id=person.id, comment="")])
        session.commit()


def test_a_record_page_names_its_people_without_a_query_each(world, backend, password_hash):
    """Shares, history and status steps by many people: the record page's statements stay
    those of a record with one of each (their people are read with them, never one by one)."""
    app, tenant, client, record_id = world
    url = f"/t/{tenant.slug}/records/{record_id}"
    crowd_record(app, tenant.slug, record_id, password_hash, 1, first=0)
    few = statements(app, client, url)
    crowd_record(app, tenant.slug, record_id, password_hash, 6, first=1)
    many = statements(app, client, url)
    assert many == few
    assert client.get(url).get_data(as_text=True).count("Crowd 00") >= 3 * 7


def test_a_full_first_page_counts_the_rest_and_a_short_one_does_not(world, backend,
                                                                     password_hash):
    """The list's total: counted when the first page is full, its length when it is not."""
    app, tenant, client, _record_id = world
    add_rows(app, tenant.slug, password_hash, 25, first=5)  # 30 records
    full = f"/t/{tenant.slug}/records/?per_page=25"
    short = f"/t/{tenant.slug}/records/?per_page=50"
    assert statements(app, client, full)[0] == statements(app, client, short)[0] + 1
    assert "30 non-conformités" in client.get(full).get_data(as_text=True)
    page = client.get(short).get_data(as_text=True)
    assert "30 non-conformités" in page and page.count("<td>NC-") == 30
    last = client.get(f"/t/{tenant.slug}/records/?per_page=25&page=2").get_data(as_text=True)
    assert last.count("<td>NC-") == 5 and "26–30" in last
