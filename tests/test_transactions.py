"""One transaction per request: services flush, the request commits once when its answer is
not an error and rolls back otherwise; a failed commit is an error page, never "saved";
work queued for after the commit (mail) runs only once the data is saved."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from flask import flash, get_flashed_messages, session
from sqlalchemy import func, select

from tests.conftest import provision
from tests.records_world import build_world


@pytest.fixture
def world(app, password_hash):
    return build_world(app, password_hash)


@contextmanager
def in_request(world):
    """A request of the tenant, with its tenant context, ending with the app's hooks."""
    from core.db import db
    from tenants.context import tenant_context
    from tenants.engines import TenantInfo
    from tenants.registry import Tenant

    app = world.app
    with app.test_request_context(f"/t/{world.slug}/", headers={"Accept-Language": "en"}):
        row = db.session.query(Tenant).filter_by(slug=world.slug).one()
        with tenant_context(TenantInfo.from_row(row)):
            yield


def count(world, model, *where) -> int:
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        return tdb.execute(select(func.count()).select_from(model).where(*where)).scalar()


def test_services_flush_and_a_failing_second_step_leaves_nothing_of_the_first(world):
    from qalitel.records import service
    from qalitel.records.models import Action, NonConformity

    with in_request(world):
        actor = world.user("manager1")
        record = service.create_nonconformity(actor, "Two steps", "first step")
        assert record.id is not None and record.number > 0  # flushed
        with pytest.raises(service.RecordError):
            service.create_action(actor, "second step", record=record, kind="telepathic")
        response = world.app.process_response(world.app.make_response(("refused", 400)))
        assert response.status_code == 400
    assert count(world, NonConformity, NonConformity.title == "Two steps") == 0
    assert count(world, Action, Action.title == "second step") == 0


def test_a_successful_answer_commits_both_steps(world):
    from qalitel.records import service
    from qalitel.records.models import Action, NonConformity

    with in_request(world):
        actor = world.user("manager1")
        record = service.create_nonconformity(actor, "Two steps", "first step")
        service.create_action(actor, "second step", record=record)
        response = world.app.process_response(world.app.make_response(("ok", 200)))
        assert response.status_code == 200
    assert count(world, NonConformity, NonConformity.title == "Two steps") == 1
    assert count(world, Action, Action.title == "second step") == 1


def test_a_failed_commit_is_a_409_and_takes_back_the_saved_message(world):
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    with in_request(world):
        with tdb.no_autoflush:
            tdb.add(NonConformity(number=424242, title="Twin"))
            tdb.add(NonConformity(number=424242, title="Twin"))  # unique number: fails at commit
        flash("Changes saved.", "success")
        response = world.app.process_response(world.app.make_response(("saved", 200)))
        assert response.status_code == 409
        assert response.get_data(as_text=True) != "saved"
        assert "not saved" in response.get_data(as_text=True).lower()
        assert "_flashes" not in session
        assert get_flashed_messages() == []
    assert count(world, NonConformity, NonConformity.title == "Twin") == 0


def test_after_commit_work_runs_only_after_a_commit(world):
    from qalitel import transaction
    from qalitel.records import service
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    ran: list[int] = []
    with world.app.app_context(), pytest.raises(RuntimeError), world.context():
        record = service.create_nonconformity(world.user("admin"), "Rolled back")
        transaction.after_commit(lambda: ran.append(1))
        raise RuntimeError("the command fails")
    assert ran == [] and count(world, NonConformity, NonConformity.title == "Rolled back") == 0

    def seen_by_another_connection() -> None:
        with tdb.get_bind().connect() as other:
            ran.append(other.execute(select(func.count()).select_from(NonConformity).where(
                NonConformity.id == record.id)).scalar())

    with world.app.app_context(), world.context():
        record = service.create_nonconformity(world.user("admin"), "Kept")
        transaction.after_commit(seen_by_another_connection)
        assert ran == []
    assert ran == [1]  # ran after the commit: another connection already reads the record


def test_an_error_answer_runs_no_after_commit_work(world):
    from qalitel import transaction

    ran: list[int] = []
    with in_request(world):
        transaction.after_commit(lambda: ran.append(1))
        world.app.process_response(world.app.make_response(("not found", 404)))
    assert ran == []


def test_no_mail_for_a_request_whose_platform_commit_fails(make_app, backend, password_hash):
    """The tenant's follow-ups (mail) run only once both databases committed."""
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    from core.db import db as platform_db
    from qalitel import transaction

    app = make_app(backend)
    provision(app, "alpha", password_hash)
    ran: list[str] = []
    with app.test_request_context("/t/alpha/"):
        from tenants.context import tenant_context
        from tenants.resolution import load_tenant

        with tenant_context(load_tenant("alpha")):
            transaction.after_commit(lambda: ran.append("mail"))

            def refuse(_session):
                raise OperationalError("COMMIT", {}, Exception("platform database refused"))

            event.listen(platform_db.session, "before_commit", refuse)
            try:
                response = transaction._finish_request(app.make_response(("ok", 200)))
            finally:
                event.remove(platform_db.session, "before_commit", refuse)
    assert response.status_code == 500
    assert ran == []
