"""One transaction per request (or command) on the platform database: a request commits
``db.session`` once when it answers, rolls it back on an error answer, and what was queued
with ``after_commit`` runs only after a commit."""

from __future__ import annotations

import pytest
from flask import Flask

from core import platform_transaction
from core.db import db
from maintenance.models import StaffUser


def _staff(email: str) -> StaffUser:
    from core import clock

    return StaffUser(email=email, name="Temp", password_hash="x", totp_secret_encrypted="x",
                     session_token=email, active=True, created_at=clock.now())


def test_a_failing_second_step_leaves_nothing_of_the_first(app):
    ran: list[str] = []
    with app.app_context():
        with pytest.raises(RuntimeError, match="second step"), \
                platform_transaction.unit_of_work():
            db.session.add(_staff("first@scoqi.example"))
            db.session.flush()
            platform_transaction.after_commit(lambda: ran.append("first"))
            raise RuntimeError("second step failed")
        assert db.session.query(StaffUser).count() == 0
        assert platform_transaction.pending_callbacks() == 0
        with platform_transaction.unit_of_work():
            db.session.add(_staff("kept@scoqi.example"))
            platform_transaction.after_commit(lambda: ran.append("kept"))
            assert ran == []
    assert ran == ["kept"]
    with app.app_context():
        assert [s.email for s in db.session.query(StaffUser)] == ["kept@scoqi.example"]


def test_a_rollback_drops_what_was_queued_and_a_commit_runs_it_once(app):
    ran: list[str] = []
    with app.app_context():
        platform_transaction.after_commit(lambda: ran.append("dropped"))
        db.session.add(_staff("gone@scoqi.example"))
        db.session.flush()
        db.session.rollback()
        db.session.commit()
        assert ran == []
        platform_transaction.after_commit(lambda: ran.append("once"))
        db.session.commit()
        db.session.commit()
    assert ran == ["once"]


def _route(app: Flask, ran: list[str]) -> None:
    def write(status: int, email: str):
        db.session.add(_staff(email))
        if email != "dup@scoqi.example":
            db.session.flush()
        platform_transaction.after_commit(lambda: ran.append(email))
        return "written", status

    app.add_url_rule("/test-platform-write/<int:status>/<email>", "test_platform_write", write)


def _emails(app: Flask) -> list[str]:
    with app.app_context():
        return sorted(s.email for s in db.session.query(StaffUser))


def test_a_request_commits_the_platform_session_once_when_it_answers(make_app, backend):
    app, ran = make_app(backend), []
    _route(app, ran)
    client = app.test_client()
    assert client.get("/test-platform-write/200/ok@scoqi.example").status_code == 200
    assert ran == ["ok@scoqi.example"] and _emails(app) == ["ok@scoqi.example"]
    for status in (400, 404, 500):
        answer = client.get(f"/test-platform-write/{status}/no{status}@scoqi.example")
        assert answer.status_code == status
    assert ran == ["ok@scoqi.example"] and _emails(app) == ["ok@scoqi.example"]


def test_a_platform_commit_refused_turns_the_answer_into_a_409(make_app, backend):
    app, ran = make_app(backend), []
    _route(app, ran)
    client = app.test_client()
    assert client.get("/test-platform-write/200/dup@scoqi.example").status_code == 200
    again = client.get("/test-platform-write/200/dup@scoqi.example")
    assert again.status_code == 409 and b"written" not in again.data
    assert ran == ["dup@scoqi.example"] and _emails(app) == ["dup@scoqi.example"]


def test_staff_commands_commit_their_one_unit_of_work(app):
    from tests.conftest import make_staff

    eve = make_staff(app)
    with app.app_context():
        before = db.session.get(StaffUser, eve.id)
        secret, token = before.totp_secret_encrypted, before.session_token
    runner = app.test_cli_runner()
    reset = runner.invoke(args=["staff", "reset-totp", eve.email])
    assert reset.exit_code == 0 and "otpauth://totp/" in reset.output
    with app.app_context():
        after = db.session.get(StaffUser, eve.id)
        assert after.totp_secret_encrypted != secret and after.session_token != token
        token = after.session_token
    assert runner.invoke(args=["staff", "deactivate", eve.email]).exit_code == 0
    with app.app_context():
        after = db.session.get(StaffUser, eve.id)
        assert not after.active and after.session_token != token
