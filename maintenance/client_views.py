"""The client administrator's side of maintenance access, at the tenant.

Pages under ``/t/<slug>/maintenance/`` (pending requests with approve/deny forms, active
grants with a revoke button, history) and the same actions as JSON under
``/t/<slug>/api/maintenance/``. Both need the tenant session of an administrator of THIS
tenant and Flask-WTF's CSRF token (form field, or ``X-CSRFToken`` header for JSON). Ids are
looked up in the current tenant's rows only: another tenant's id is a 404 like a forged one.
Decisions themselves live in :mod:`maintenance.grants`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError, generate_csrf
from werkzeug.exceptions import HTTPException

from core import dates
from core.db import db
from core.web import admin_required, is_admin
from maintenance import grants, notify, revocations  # noqa: F401  (notify: the e-mail hook)
from maintenance.access import grant_state
from maintenance.audit import AuditWriteError
from maintenance.labels import SCOPE_LABELS, STATE_LABELS, STATUS_LABELS
from maintenance.models import Grant, MaintenanceRequest, RequestStatus
from maintenance.requests import aware
from tenants.context import current_tenant, has_tenant

bp = Blueprint("maintenance", __name__)
api = Blueprint("api", __name__, url_prefix="/api/maintenance")

HISTORY_LIMIT = 100
#: Largest JSON body the decision API reads (a comment is at most 1000 characters).
API_BODY_MAX = 256 * 1024


def _admin() -> grants.ClientAdmin:
    return grants.ClientAdmin(user_id=current_user.id, name=current_user.name,
                              email=current_user.email)


def _tenant_id() -> int:
    return current_tenant().id


# ---------------------------------------------------------------- banner (every tenant page)


def _pending_for_admin() -> int:
    """Requests awaiting a decision, for an admin of the current tenant (0 for anyone else)."""
    if "maintenance_pending" not in g:
        count = 0
        if has_tenant() and is_admin():
            try:
                count = grants.pending_count(_tenant_id())
            except Exception:  # a banner never takes a page down
                db.session.rollback()
        g.maintenance_pending = count
    return g.maintenance_pending


@bp.app_context_processor
def _banner_values() -> dict[str, Any]:
    return {"maintenance_pending_count": _pending_for_admin}


# ---------------------------------------------------------------- pages


def _page(status: int = 200, error: str | None = None):
    tenant_id = _tenant_id()
    history = grants.requests_of_tenant(tenant_id, limit=HISTORY_LIMIT)
    pending = [r for r in history if r.status is RequestStatus.PENDING]
    pending.reverse()  # oldest first: the first to expire on top
    decided = [r for r in history if r.status is not RequestStatus.PENDING]
    return render_template(
        "maintenance/requests.html", pending=pending, active=grants.active_grants(tenant_id),
        history=decided, error=error, grant_state=grant_state, scope_labels=SCOPE_LABELS,
        status_labels=STATUS_LABELS, state_labels=STATE_LABELS, utc=aware,
        comment_max=grants.COMMENT_MAX), status


@bp.get("/maintenance/")
@admin_required
def index():
    return _page()


def _request_or_404(public_id: str) -> MaintenanceRequest:
    found = grants.request_of_tenant(_tenant_id(), public_id)
    if found is None:
        abort(404)
    return found


def _grant_or_404(grant_id: int) -> Grant:
    found = grants.grant_of_tenant(_tenant_id(), grant_id)
    if found is None:
        abort(404)
    return found


def _decide_page(act: Callable[[], str]):
    try:
        message = act()
    except grants.DecisionError as exc:
        return _page(400, str(exc))
    except grants.ReplayError as exc:
        return _page(409, str(exc))
    except AuditWriteError:
        db.session.rollback()
        return _page(503, _("The access log cannot be written: nothing was decided."))
    flash(message, "info")
    return redirect(url_for("tenant.maintenance.index"), 303)


@bp.post("/maintenance/requests/<public_id>/approve")
@admin_required
def approve(public_id: str):
    req = _request_or_404(public_id)

    def act() -> str:
        grant = grants.approve(req, _admin(), hours=request.form.get("hours"),
                               scope=request.form.get("scope"),
                               comment=request.form.get("comment"))
        return _("Approved: %(engineer)s may work on your data (%(scope)s) until %(end)s.",
                 engineer=req.engineer.name, scope=SCOPE_LABELS[grant.scope],
                 end=dates.datetime_text(grant.ends_at))
    return _decide_page(act)


@bp.post("/maintenance/requests/<public_id>/deny")
@admin_required
def deny(public_id: str):
    req = _request_or_404(public_id)

    def act() -> str:
        grants.deny(req, _admin(), request.form.get("comment"))
        return _("Request denied.")
    return _decide_page(act)


@bp.post("/maintenance/grants/<int:grant_id>/revoke")
@admin_required
def revoke(grant_id: int):
    grant = _grant_or_404(grant_id)
    try:
        grants.revoke(grant, _admin(), request.form.get("comment"))
    except grants.DecisionError as exc:
        return _page(400, str(exc))
    except grants.ReplayError as exc:
        return _page(409, str(exc))
    except revocations.RevocationFailed as exc:
        db.session.rollback()
        return _page(503, _revocation_failed(exc))
    except grants.RevocationPending:
        db.session.rollback()
        flash(_("Access revoked: the engineer is cut off now. The revocation will be written "
                "to the access log as soon as the database is available again."), "warning")
        return redirect(url_for("tenant.maintenance.index"), 303)
    flash(_("Access revoked: the engineer's next request is refused."), "info")
    return redirect(url_for("tenant.maintenance.index"), 303)


def _revocation_failed(exc: revocations.RevocationFailed) -> str:
    if exc.cut_off:
        return _("The revocation could not be recorded (the platform is unavailable), but the "
                 "engineer's database access is cut off now. Try again in a moment so that it "
                 "is recorded and logged.")
    return _("The revocation could not be recorded (the platform is unavailable): the access "
             "is NOT revoked yet and may still be used. Try again in a moment.")


# ---------------------------------------------------------------- JSON API


def _iso(value: datetime | None) -> str | None:
    return aware(value).isoformat() if value is not None else None


def grant_json(grant: Grant) -> dict[str, Any]:
    return {"id": grant.id, "scope": grant.scope.value, "state": grant_state(grant),
            "starts_at": _iso(grant.starts_at), "ends_at": _iso(grant.ends_at),
            "revoked_at": _iso(grant.revoked_at),
            "revoked_by": ({"name": grant.revoked_by_name, "email": grant.revoked_by_email}
                           if grant.revoked_by_name else None)}


def request_json(req: MaintenanceRequest) -> dict[str, Any]:
    return {
        "id": req.public_id, "status": req.status.value,
        "engineer": {"name": req.engineer.name, "email": req.engineer.email},
        "reason": req.reason, "ticket": req.ticket, "scope": req.scope.value,
        "hours": req.hours, "created_at": _iso(req.created_at),
        "pending_until": _iso(req.pending_until), "decided_at": _iso(req.decided_at),
        "decided_by": ({"name": req.decided_by_name, "email": req.decided_by_email}
                       if req.decided_by_name else None),
        "comment": req.decision_comment,
        "grant": grant_json(req.grant) if req.grant is not None else None,
    }


def _error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify(error=code, message=message), status


@api.errorhandler(CSRFError)
def _csrf_error(exc: CSRFError):
    return _error(400, "csrf", exc.description or "CSRF token missing or invalid")


ERROR_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "too_large"}


def _http_error(exc: HTTPException):
    code = exc.code or 500
    return _error(code, ERROR_CODES.get(code, "error"), exc.description or exc.name)


# By code as well: the app's own 403/404 pages are code handlers, which win over a class one.
api.register_error_handler(HTTPException, _http_error)
for _code in ERROR_CODES:
    api.register_error_handler(_code, _http_error)


@api.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def api_admin(view: Callable[..., Any]) -> Callable[..., Any]:
    """Signed in (401) as an administrator of this tenant (403), answered in JSON."""
    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return _error(401, "unauthenticated", "sign in first")
        if not is_admin():
            return _error(403, "forbidden", "only an administrator of this company decides")
        return view(*args, **kwargs)
    return guarded


def _body() -> dict[str, Any]:
    """The JSON object sent (``{}`` for no body); 400 for anything else, 413 past the limit
    (the app's ``MAX_CONTENT_LENGTH`` bounds what is read without a ``Content-Length``)."""
    if (request.content_length or 0) > API_BODY_MAX:
        abort(413)
    raw = request.get_data(cache=True)
    if len(raw) > API_BODY_MAX:
        abort(413)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        abort(400, "the body is not valid JSON")
    if not isinstance(data, dict):
        abort(400, "the body must be a JSON object")
    return data


def _decide_json(act: Callable[[], Any]):
    try:
        result = act()
    except grants.DecisionError as exc:
        return _error(400, "bad_request", str(exc))
    except grants.ReplayError as exc:
        return _error(409, "conflict", str(exc))
    except AuditWriteError:
        db.session.rollback()
        return _error(503, "log_unavailable", "the access log cannot be written")
    return jsonify(result)


@api.get("/requests")
@api_admin
def api_requests():
    status = request.args.get("status")
    if status is not None and status not in {s.value for s in RequestStatus}:
        return _error(400, "bad_request", "unknown status")
    rows = grants.requests_of_tenant(_tenant_id(), limit=HISTORY_LIMIT)
    if status is not None:
        rows = [r for r in rows if r.status.value == status]
    return jsonify(requests=[request_json(r) for r in rows], csrf_token=generate_csrf())


@api.post("/requests/<public_id>/approve")
@api_admin
def api_approve(public_id: str):
    req = _request_or_404(public_id)
    data = _body()

    def act() -> dict[str, Any]:
        grants.approve(req, _admin(), hours=data.get("hours"), scope=data.get("scope"),
                       comment=data.get("comment"))
        db.session.refresh(req)
        return {"request": request_json(req)}
    return _decide_json(act)


@api.post("/requests/<public_id>/deny")
@api_admin
def api_deny(public_id: str):
    req = _request_or_404(public_id)
    data = _body()

    def act() -> dict[str, Any]:
        grants.deny(req, _admin(), data.get("comment"))
        return {"request": request_json(req)}
    return _decide_json(act)


@api.post("/grants/<int:grant_id>/revoke")
@api_admin
def api_revoke(grant_id: int):
    grant = _grant_or_404(grant_id)
    data = _body()
    try:
        grants.revoke(grant, _admin(), data.get("comment"))
    except grants.DecisionError as exc:
        return _error(400, "bad_request", str(exc))
    except grants.ReplayError as exc:
        return _error(409, "conflict", str(exc))
    except revocations.RevocationFailed as exc:
        db.session.rollback()
        return _error(503, "revocation_not_recorded", _revocation_failed(exc))
    except grants.RevocationPending:
        db.session.rollback()
        return jsonify(grant=grant_json(grant), pending=True, message=(
            "access revoked: the engineer is cut off now; the revocation will be written to "
            "the access log as soon as the database is available again")), 202
    return jsonify(grant=grant_json(grant))


bp.register_blueprint(api)
