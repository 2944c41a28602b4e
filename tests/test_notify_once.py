"""Notifications on both backends: the digest lists no record in a final status (closed or
unfounded); an empty digest is recorded (skipped, "empty") and not computed again by the
day's later runs; a first insert racing another one (a double submit, two runs) is
idempotent, never an IntegrityError."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.notify_world import TODAY, make_world

pytestmark = pytest.mark.usefixtures("english_clients")


@pytest.fixture
def world(make_app, backend, smtp_server, password_hash):
    return make_world(make_app, backend, password_hash, **smtp_server.settings())


def _record(world, title: str, assignee: str, status: str | None = None) -> int:
    from qalitel.records import service
    from qalitel.users.models import User
    from tenants.context import tdb

    with world.tenant():
        admin = tdb.get(User, world.ids["admin"])
        record = service.create_nonconformity(admin, title, assignee_id=world.ids[assignee])
        if status:
            service.change_status(admin, record, status, justification="Customer misuse")
        tdb.commit()
        return record.id


def test_the_digest_lists_no_unfounded_record(world):
    from qalitel.notifications import compose
    from qalitel.users.models import User
    from tenants.context import tdb

    _record(world, "Still open", "john")
    _record(world, "Not a defect", "john", "unfounded")
    with world.app.test_request_context(), world.tenant():
        digest = compose.digest_of(tdb.get(User, world.ids["john"]), TODAY)
        assert [r.title for r in digest.records] == ["Still open"]


def test_an_empty_digest_is_recorded_once_and_not_computed_again(world, smtp_server,
                                                                 monkeypatch):
    from qalitel.notifications import compose

    _record(world, "Not a defect", "john", "unfounded")  # nothing waits for John
    world.action("soon", "marie", TODAY + timedelta(2))
    assert world.job() == {"queued": 2, "sent": 2}  # Marie: due soon and her digest
    notes = world.notes()
    assert ("digest", "john", "skipped", "empty", 0) in notes
    assert not any(m.rcpt_tos == ["john@alpha.example"] for m in smtp_server.messages)

    computed = []
    real = compose.digest_of
    monkeypatch.setattr(compose, "digest_of",
                        lambda user, today: computed.append(user.id) or real(user, today))
    world.clock.advance(minutes=15)  # the next run of the same Monday
    assert world.job() == {"queued": 0}
    assert computed == [] and world.notes() == notes


def test_queueing_a_key_queued_meanwhile_returns_none(world, monkeypatch):
    from sqlalchemy import func, select

    from qalitel.notifications import delivery
    from qalitel.notifications.models import Kind, Notification
    from tenants.context import tdb

    key = f"digest:{world.ids['john']}:2030-W10"
    with world.tenant():
        assert delivery.queue(Kind.DIGEST, world.ids["john"], key) is not None
        tdb.commit()
    monkeypatch.setattr(delivery, "queued", lambda _key: False)  # looked before it landed
    with world.tenant():
        assert delivery.queue(Kind.DIGEST, world.ids["john"], key) is None
        other = delivery.queue(Kind.DIGEST, world.ids["marie"], "digest:other")
        tdb.commit()  # the session stayed usable
        assert other is not None
        assert tdb.execute(select(func.count()).select_from(Notification)).scalar() == 2


@pytest.mark.parametrize("which", ["tenant", "user"])
def test_a_first_save_racing_another_writes_over_its_row(world, monkeypatch, which):
    from qalitel.notifications import settings, timing
    from qalitel.notifications.models import NotificationPreference, NotificationSettings
    from qalitel.users.models import User
    from tenants.context import tdb

    fields = settings.TENANT_FIELDS if which == "tenant" else settings.USER_FIELDS

    def save(values):
        actor = tdb.get(User, world.ids["john" if which == "user" else "admin"])
        if which == "tenant":
            return settings.save_tenant_settings(actor, values)
        return settings.save_user_preference(actor, values)

    with world.tenant():
        defaults = timing.tenant_settings() if which == "tenant" else \
            timing.default_preference(world.ids["john"])
        first = {f: getattr(defaults, f) for f in fields} | {"due_soon_days": 5}
        assert save(first) == ["due_soon_days"]  # the other request's insert
        tdb.commit()
    # this request read before that insert landed: it sees the defaults, and inserts
    real_tenant, real_user = timing.tenant_settings, timing.user_preference
    stale = iter([True])
    monkeypatch.setattr(timing, "tenant_settings", lambda: NotificationSettings(
        id=1, due_soon_days=3, digest_weekday=0, **dict.fromkeys(timing.FLAGS, True))
        if next(stale, False) else real_tenant())
    monkeypatch.setattr(timing, "user_preference", lambda user_id: NotificationPreference(
        user_id=user_id, due_soon_days=None, **dict.fromkeys(timing.FLAGS, True))
        if next(stale, False) else real_user(user_id))
    with world.tenant():
        assert save(first | {"due_soon_days": 7, "digest": False}) == ["due_soon_days",
                                                                       "digest"]
        tdb.commit()
    with world.tenant():
        row = tdb.get(NotificationSettings if which == "tenant" else NotificationPreference,
                      1 if which == "tenant" else world.ids["john"])
        assert (row.due_soon_days, row.digest) == (7, False)
