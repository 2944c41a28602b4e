"""One transaction per request (or CLI command) on the tenant database, and at the end of
every request the platform database's too (:mod:`core.platform_transaction`).

Services only ``flush``: they never commit. The request commits once, in an ``after_request``
hook, when the response is not an error (status < 400), and rolls back otherwise; a commit
that fails turns the response into an error page (409 for a conflict, 500 otherwise) before
anything is sent, so the person never reads "saved" for a change that was lost. CLI code,
jobs and tests wrap their work in :func:`unit_of_work`.

Work that must follow the commit (sending mail) is registered with :func:`after_commit`: it
runs once the data it speaks of is saved, and never when the transaction is rolled back.

The platform session (``db.session``) follows the same rule at the end of each request: the
tenant transaction commits first, then the platform one; an error response, or a tenant
commit that failed, rolls the platform session back. Services that commit the platform
session early (claims before an access-log append) say why in their docstrings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask, Response, session
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from core import platform_transaction
from tenants.context import has_tenant, tdb

log = logging.getLogger(__name__)

_CALLBACKS = "qalitel_after_commit"


def after_commit(callback: Callable[[], object]) -> None:
    """Run ``callback`` after the current tenant transaction commits (dropped on rollback)."""
    tdb.info.setdefault(_CALLBACKS, []).append(callback)


def commit() -> None:
    """Commit the tenant session, then run what :func:`after_commit` queued."""
    _run(_commit_tenant())


def _commit_tenant() -> list[Callable[[], object]]:
    """Commit the tenant session; the follow-ups it queued, for the caller to run."""
    callbacks = tdb.info.pop(_CALLBACKS, [])
    try:
        tdb.commit()
    except Exception:
        tdb.rollback()
        raise
    return callbacks


def _run(callbacks: list[Callable[[], object]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:  # the data is saved; a failing follow-up must not undo the answer
            log.exception("after-commit step failed")


def rollback() -> None:
    tdb.info.pop(_CALLBACKS, None)
    tdb.rollback()


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Commit what the block did if it ends normally, roll it all back if it raises."""
    try:
        yield
    except BaseException:
        rollback()
        raise
    commit()


def _failed(status: int) -> Response:
    session.pop("_flashes", None)  # a "saved" message queued by the view is not true
    from qalitel.errors import render_error

    response = render_error(status, database=False, not_saved=True)
    response.headers["Cache-Control"] = "no-store"
    return response


def _finish_request(response: Response) -> Response:
    """Tenant commit, then platform commit, then the tenant's follow-ups (mail): nothing is
    mailed for a request whose answer turns into an error. The two databases commit one
    after the other (no two-phase commit): a platform commit refused after the tenant's
    leaves the tenant's part saved, and the answer says the request failed."""
    if response.status_code >= 400:
        if has_tenant():
            rollback()
        platform_transaction.rollback()
        return response
    callbacks: list[Callable[[], object]] = []
    for step in (_commit_tenant if has_tenant() else list, platform_transaction.commit):
        try:
            callbacks += step() or []
        except IntegrityError:
            log.warning("commit refused by a constraint", exc_info=True)
            _abandon()
            return _failed(409)
        except SQLAlchemyError:
            log.exception("commit failed")
            _abandon()
            return _failed(500)
    _run(callbacks)
    return response


def _abandon() -> None:
    if has_tenant():
        rollback()
    platform_transaction.rollback()


def init_app(app: Flask) -> None:
    """Register last in ``create_app``: app-level hooks run in reverse order, so this commit
    comes before the others (headers, cookies) shape the response."""
    app.after_request(_finish_request)
