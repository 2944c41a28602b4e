"""Queue, check, send and record notification mails.

A notification is a row first (``pending``), under a unique key, so it is queued at most
once. Sending claims it (``attempts`` compared and increased, committed), checks again that
it is still due to its recipient (active, not erased, kind not turned off, object still
visible to them; otherwise ``skipped`` with the reason), sends outside any transaction, and
records ``sent`` or ``failed`` with a short reason. Failed ones are retried by the job up
to :data:`MAX_ATTEMPTS` attempts in all.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from collections import Counter
from collections.abc import Iterable
from datetime import date, timedelta

from flask import Flask, current_app
from flask_babel import force_locale
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from core import clock, config, mail
from qalitel.notifications import compose, timing
from qalitel.notifications.models import ERROR_MAX, SUBJECT_MAX, Kind, Notification, Status
from qalitel.records import visibility
from qalitel.records.models import ACTION_CLOSED, Action, NonConformity
from qalitel.transaction import after_commit, unit_of_work
from qalitel.users.models import User
from tenants.context import current_tenant, tdb, tenant_context
from tenants.engines import TenantInfo

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
STALE = timedelta(minutes=10)
"""A pending notification claimed this long ago without an outcome (its sender stopped) is
taken again by the job; a younger one may still be on its way."""

OBJECTS: dict[str, type[Action] | type[NonConformity]] = {"action": Action,
                                                          "record": NonConformity}


def queued(key: str) -> bool:
    return tdb.execute(select(Notification.id).where(Notification.key == key)).first() \
        is not None


def queue(kind: Kind, user_id: int, key: str, target: Action | NonConformity | None = None
          ) -> Notification | None:
    """A new pending notification under ``key``; None when that key was queued already
    (also by a request or run racing this one: the insert is in a savepoint)."""
    if queued(key):
        return None
    note = Notification(key=key, kind=kind.value, user_id=user_id, status=Status.PENDING,
                        object_type=None if target is None else
                        ("action" if isinstance(target, Action) else "record"),
                        object_id=None if target is None else target.id, attempts=0,
                        created_at=clock.now())
    try:
        with tdb.begin_nested():
            tdb.add(note)
            tdb.flush()
    except IntegrityError:
        return None  # queued meanwhile by another request or run
    return note


def skip(kind: Kind, user_id: int, key: str, reason: str) -> None:
    """Record under ``key`` a notification that will not go, and why (unless queued)."""
    note = queue(kind, user_id, key)
    if note is not None:
        note.status, note.error = Status.SKIPPED.value, reason
        tdb.flush()


def visible(user: User, target: Action | NonConformity) -> bool:
    if isinstance(target, Action):
        where = visibility.action_visibility(user)
    else:
        where = visibility.record_visibility(user)
    model = type(target)
    return tdb.execute(select(model.id).where(model.id == target.id, where)).first() is not None


def target_of(note: Notification) -> Action | NonConformity | None:
    model = OBJECTS.get(note.object_type or "")
    return tdb.get(model, note.object_id) if model and note.object_id else None


def why_not(note: Notification, user: User | None, target: Action | NonConformity | None,
            today: date) -> str | None:
    """Why ``note`` must not go (a reason code, see the admin page), or None."""
    if user is None:
        return "no_recipient"
    if user.is_tombstone:
        return "erased"
    if user.is_suspended:
        return "suspended"
    if not timing.wanted(note.kind, user.id):
        return "turned_off"
    if note.kind == Kind.DIGEST:
        return None
    if target is None:
        return "gone"
    if not visible(user, target):
        return "not_visible"
    owner = target.owner_id if isinstance(target, Action) else target.assignee_id
    if owner != user.id:
        return "reassigned"
    if isinstance(target, Action) and note.kind != Kind.ASSIGNMENT:
        if target.status in ACTION_CLOSED:
            return "finished"
        if target.due_date is None or not note.key.endswith(target.due_date.isoformat()):
            return "changed"
    return None


def failure_reason(exc: BaseException) -> str:
    from qalitel.auth.service import failure_reason as words

    with force_locale("en"):
        return str(words(exc))[:ERROR_MAX]


def _claim(note_id: int) -> bool:
    with unit_of_work():
        note = tdb.get(Notification, note_id, populate_existing=True)
        if note is None or note.status not in (Status.PENDING, Status.FAILED) \
                or note.attempts >= MAX_ATTEMPTS:
            return False
        done = tdb.execute(update(Notification).where(
            Notification.id == note_id, Notification.attempts == note.attempts,
            Notification.status.in_((Status.PENDING, Status.FAILED)))
            .values(attempts=note.attempts + 1, last_attempt_at=clock.now())
            .execution_options(synchronize_session=False)).rowcount
    return bool(done)


def _finish(note_id: int, status: Status, error: str | None = None) -> None:
    with unit_of_work():
        note = tdb.get(Notification, note_id, populate_existing=True)
        note.status = status.value
        note.error = error[:ERROR_MAX] if error else None
        if status is Status.SENT:
            note.sent_at = clock.now()


def deliver_one(note_id: int) -> str | None:
    """Claim, check, send and record one notification: its outcome, None when another
    sender has it (or it is done)."""
    if not _claim(note_id):
        return None
    settings = config.settings()
    today = timing.today()
    with unit_of_work():
        note = tdb.get(Notification, note_id, populate_existing=True)
        user = tdb.get(User, note.user_id) if note.user_id else None
        target = target_of(note)
        reason = why_not(note, user, target, today)
        digest = compose.digest_of(user, today) if user and note.kind == Kind.DIGEST else None
        if reason is None and digest is not None and not digest:
            reason = "empty"
        if reason is None:
            subject, message = compose.build(settings, note, user, target, today, digest)
            note.subject = subject[:SUBJECT_MAX]
    if reason is not None:
        _finish(note_id, Status.SKIPPED, reason)
        return Status.SKIPPED.value
    try:
        mail.send_now(settings, message)
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("notification %s not sent: %s", note_id, exc)
        _finish(note_id, Status.FAILED, failure_reason(exc))
        return Status.FAILED.value
    _finish(note_id, Status.SENT)
    return Status.SENT.value


def deliver(ids: Iterable[int]) -> Counter[str]:
    """Deliver each notification; one failing (a database error) leaves the others."""
    outcomes: Counter[str] = Counter()
    for note_id in ids:
        try:
            outcome = deliver_one(note_id)
        except Exception:  # noqa: BLE001 - counted; the row stays for the next run
            log.exception("notification %s not delivered", note_id)
            outcome = "error"
        if outcome:
            outcomes[outcome] += 1
    return outcomes


def waiting_ids() -> list[int]:
    """What the job sends: pending ones (not just claimed by a sender still at work) and
    failed ones with attempts left, oldest first."""
    stale = clock.now() - STALE
    return list(tdb.execute(select(Notification.id).where(or_(
        (Notification.status == Status.PENDING) & or_(
            Notification.last_attempt_at.is_(None), Notification.last_attempt_at < stale),
        (Notification.status == Status.FAILED) & (Notification.attempts < MAX_ATTEMPTS)))
        .order_by(Notification.id)).scalars())


def _in_thread(app: Flask, info: TenantInfo, ids: list[int]) -> None:
    try:
        with app.app_context(), tenant_context(info):
            deliver(ids)
    except Exception:  # noqa: BLE001 - the job sends what is left
        log.exception("notifications %s not delivered after the commit", ids)


def send_after_commit(notes: list[Notification]) -> None:
    """Send ``notes`` once the request's transaction commits: in a background thread
    (``MAIL_BACKGROUND``, the default), or in the request. Dropped on rollback (the rows
    with it)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    info, ids = current_tenant(), [n.id for n in notes]

    def send() -> None:
        if app.config.get("MAIL_BACKGROUND", True):
            threading.Thread(target=_in_thread, args=(app, info, ids), daemon=True,
                             name="qalitel-notify").start()
        else:
            deliver(ids)

    after_commit(send)
