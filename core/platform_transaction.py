"""One transaction per request (or CLI command) on the platform database: the twin of
:mod:`qalitel.transaction`, for ``db.session``.

Services flush; the request commits ``db.session`` once at its end when the response is not
an error, and rolls it back otherwise (``qalitel.transaction`` does both sessions); CLI code and
jobs wrap their work in :func:`unit_of_work`. A service that must commit early says why in
its docstring (typically: on SQLite, a claim must be committed before the access log is
appended, since an uncommitted platform write holds the lock the append needs).

Work that must follow the commit (sending mail) is queued with :func:`after_commit`. It runs
once the platform transaction it was queued in commits, whoever commits it (the request, a
unit of work, or a service committing early), and is dropped when that transaction rolls
back. It runs while the session finishes its commit, so it must not query the database:
prepare everything (rendered messages) before queueing, and only send in the callback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from core.db import PlatformSession, db

log = logging.getLogger(__name__)

_CALLBACKS = "qalitel_platform_after_commit"


def after_commit(callback: Callable[[], object]) -> None:
    """Run ``callback`` after the current platform transaction commits (dropped on rollback)."""
    db.session.info.setdefault(_CALLBACKS, []).append(callback)


def pending_callbacks() -> int:
    """How many callbacks wait for the commit of the current platform transaction."""
    return len(db.session.info.get(_CALLBACKS, []))


def commit() -> None:
    """Commit the platform session (its queued callbacks run once it is committed)."""
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise


def rollback() -> None:
    db.session.rollback()


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Commit what the block did to the platform database if it ends normally, roll it all
    back (and drop what :func:`after_commit` queued) if it raises."""
    try:
        yield
    except BaseException:
        rollback()
        raise
    commit()


@event.listens_for(PlatformSession, "after_commit")
def _run_callbacks(session: Session) -> None:
    for callback in session.info.pop(_CALLBACKS, []):
        try:
            callback()
        except Exception:  # the data is saved; a failing follow-up must not undo the answer
            log.exception("after-commit step failed")


@event.listens_for(PlatformSession, "after_soft_rollback")
def _drop_callbacks(session: Session, previous_transaction: SessionTransaction) -> None:
    if not previous_transaction.nested:
        session.info.pop(_CALLBACKS, None)
