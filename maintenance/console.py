"""The staff console at ``/staff/``: operations on tenants, maintenance requests, and work
inside an approved grant.

It knows engineers only by the ``qalitel_staff`` cookie (never the tenant app's session),
shows tenants' operational data and never their content, and reaches a tenant database only
through :mod:`maintenance.access`, re-checking the grant on every request. There is no
approving here: approval is the client administrator's, at the tenant.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from core import config

try:
    from wtforms.fields.choices import SelectChoice
except ImportError:  # pragma: no cover - WTForms < 3.3
    SelectChoice = None  # type: ignore[assignment,misc]

from core.db import db
from core.jobs import runner as jobs_runner
from core.validation import id_or_none, safe_redirect
from maintenance import access, backup_health, requests, staff
from maintenance.audit import AuditWriteError
from maintenance.backup_health import BackupHealth
from maintenance.labels import SCOPE_LABELS
from maintenance.models import Grant, Scope
from tenants import pg
from tenants.deletion import DeletionRecord
from tenants.engines import sqlite_path
from tenants.registry import Backend, Tenant, TenantStatus

log = logging.getLogger(__name__)

bp = Blueprint("staff", __name__, url_prefix="/staff")
PUBLIC_ENDPOINTS = frozenset({"staff.login"})
PAGE_SIZE = 50
RECENT_BACKUPS = 10


# ---------------------------------------------------------------- forms


def _choices(pairs) -> list:
    return [SelectChoice(v, label) if SelectChoice else (v, label) for v, label in pairs]


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    code = StringField(_l("Authenticator code"), validators=[DataRequired(), Length(max=10)])


class RequestForm(FlaskForm):
    tenant = SelectField(_l("Client"), validators=[DataRequired()], choices=[])
    reason = TextAreaField(_l("Reason"), validators=[
        DataRequired(), Length(max=requests.REASON_MAX)])
    ticket = StringField(_l("Ticket reference"), validators=[
        Optional(), Length(max=requests.TICKET_MAX)])
    scope = SelectField(_l("Scope"), choices=_choices([(Scope.READ.value, _l("read")),
                                                       (Scope.READ_WRITE.value, _l("read-write"))]),
                        default=Scope.READ.value)
    hours = StringField(_l("Duration (hours)"), validators=[Optional(), Length(max=10)])


class ChangeForm(FlaskForm):
    column = StringField(_l("Field"), validators=[DataRequired(), Length(max=63)])
    value = TextAreaField(_l("New value"), validators=[Length(max=20000)])


class PostForm(FlaskForm):
    """A button that posts (CSRF token only)."""


# ---------------------------------------------------------------- the staff login


@bp.before_request
def _load_staff():
    raw = request.cookies.get(staff.COOKIE_NAME)
    g.staff = staff.staff_from_cookie(raw) if raw else None
    g.staff_cookie_bad = raw is not None and g.staff is None
    if g.staff is None and request.endpoint not in PUBLIC_ENDPOINTS:
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("staff.login", next=safe_redirect(target, "/staff/")))
    return None


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.vary.add("Cookie")
    if g.get("staff_cookie_bad") and not g.get("staff_cookie_set"):
        staff.clear_cookie(response)
    return response


@bp.context_processor
def _values():
    return {"staff_user": g.get("staff"), "post_form": PostForm(), "scope_labels": SCOPE_LABELS}


@bp.route("/login", methods=["GET", "POST"])
def login():
    if g.staff is not None:
        return redirect(url_for("staff.index"))
    form = LoginForm()
    if form.validate_on_submit():
        email = (form.email.data or "").strip().lower()
        address = request.remote_addr or "-"
        throttle = staff.throttle()
        if throttle.blocked(email, address):
            return render_template("staff/login.html", form=form, error=_(
                "Too many failed attempts. Try again later.")), 429
        engineer = staff.authenticate(email, form.password.data or "", form.code.data or "")
        if engineer is None:
            throttle.failed(email, address)
            return render_template("staff/login.html", form=form, error=_(
                "Wrong email, password or authenticator code (a code works once).")), 401
        target = safe_redirect(request.args.get("next"), "/staff/")
        response = redirect(target or url_for("staff.index"))
        staff.issue_cookie(response, engineer)
        g.staff_cookie_set = True
        return response
    status = 400 if request.method == "POST" else 200
    return render_template("staff/login.html", form=form), status


@bp.post("/logout")
def logout():
    if not PostForm().validate_on_submit():
        abort(400)
    staff.end_sessions(g.staff)
    response = redirect(url_for("staff.login"))
    staff.clear_cookie(response)
    g.staff_cookie_set = True
    return response


# ---------------------------------------------------------------- tenants (operational data only)


@dataclass
class TenantRow:
    tenant: Tenant
    size_bytes: int | None
    backups: BackupHealth | None  # None: not backed up (closed), or no catalogue to read
    catalogue: bool = False  # whether backup health could be read at all


def _sqlite_size(tenant: Tenant) -> int | None:
    settings = config.settings()
    path = sqlite_path(settings, tenant.database_name)
    total, found = 0, False
    for suffix in ("", "-wal"):
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            total += candidate.stat().st_size
            found = True
    return total if found else None


def _pg_sizes(tenants: list[Tenant]) -> dict[int, int]:
    """``pg_database_size`` of each PostgreSQL tenant, one admin connection per server."""
    from tenants.provisioning import server_url

    settings = config.settings()
    sizes: dict[int, int] = {}
    by_server: dict[int, list[Tenant]] = {}
    for tenant in tenants:
        if tenant.backend is Backend.POSTGRESQL and tenant.server is not None:
            by_server.setdefault(tenant.server.id, []).append(tenant)
    for group in by_server.values():
        try:
            with pg.admin_connection(server_url(settings, group[0].server)) as conn, \
                    conn.cursor() as cur:
                cur.execute("SELECT datname, pg_database_size(datname) FROM pg_database "
                            "WHERE datname = ANY(%s)", ([t.database_name for t in group],))
                found = dict(cur.fetchall())
        except Exception:
            log.warning("database sizes unavailable on server %s", group[0].server.name,
                        exc_info=True)
            continue
        for tenant in group:
            if tenant.database_name in found:
                sizes[tenant.id] = int(found[tenant.database_name])
    return sizes


def tenant_rows(tenants: list[Tenant], recent: int = 0) -> list[TenantRow]:
    """Each tenant's operational data, its backup health with ``recent`` newest backups."""
    pg_sizes = _pg_sizes(tenants)
    health = backup_health.report([t.slug for t in tenants], recent)
    return [TenantRow(tenant=t, backups=(health or {}).get(t.slug), catalogue=health is not None,
                      size_bytes=(pg_sizes.get(t.id) if t.backend is Backend.POSTGRESQL
                                  else _sqlite_size(t)))
            for t in tenants]


def _tenant_or_404(slug: str) -> Tenant:
    tenant = db.session.execute(select(Tenant).where(Tenant.slug == slug)).scalar_one_or_none()
    if tenant is None or tenant.status is TenantStatus.PROVISIONING:
        abort(404)
    return tenant


def _my_grants(tenant_id: int | None = None) -> list[Grant]:
    query = select(Grant).where(Grant.engineer_id == g.staff.id)
    if tenant_id is not None:
        query = query.where(Grant.tenant_id == tenant_id)
    return list(db.session.execute(query.order_by(Grant.starts_at.desc()).limit(100)).scalars())


@bp.get("/")
def index():
    tenants = list(db.session.execute(
        select(Tenant).where(Tenant.status != TenantStatus.PROVISIONING)
        .order_by(Tenant.slug)).scalars())
    return render_template("staff/index.html", rows=tenant_rows(tenants),
                           my_requests=requests.requests_of(g.staff, limit=50),
                           grants=_my_grants(), grant_state=access.grant_state,
                           jobs=jobs_runner.status(config.settings()))


@bp.get("/closures")
def closures():
    """Departed clients and where their deletion stands: closed, dropped, last backup
    expired, purged (the deletion records, ``tenants.deletion``: no client data)."""
    records = db.session.execute(select(DeletionRecord).order_by(
        DeletionRecord.closed_at.desc()).limit(200)).scalars().all()
    return render_template("staff/closures.html", records=records)


@bp.get("/tenants/<slug:slug>")
def tenant(slug: str):
    row = _tenant_or_404(slug)
    return render_template("staff/tenant.html", row=tenant_rows([row], RECENT_BACKUPS)[0],
                           my_requests=requests.requests_of(g.staff, row.id),
                           grants=_my_grants(row.id), grant_state=access.grant_state)


# ---------------------------------------------------------------- requests


def _request_form() -> RequestForm:
    form = RequestForm()
    tenants = db.session.execute(select(Tenant).where(Tenant.status == TenantStatus.ACTIVE)
                                 .order_by(Tenant.slug)).scalars()
    form.tenant.choices = _choices((t.slug, f"{t.name} ({t.slug})") for t in tenants)
    return form


@bp.route("/requests/new", methods=["GET", "POST"])
def new_request():
    form = _request_form()
    settings = config.settings()
    error = None
    if request.method == "GET":
        form.tenant.data = request.args.get("tenant", "")[:40]
        form.hours.data = f"{settings.maintenance_default_hours:g}"
    elif form.validate_on_submit():
        try:
            made = requests.create_request(
                form.tenant.data or "", g.staff, form.reason.data, ticket=form.ticket.data,
                scope=form.scope.data, hours=(form.hours.data or "").replace(",", ".") or None)
        except requests.RequestError as exc:
            error = str(exc)
        except AuditWriteError:
            return render_template("staff/refused.html", reason=_(
                "The access log cannot be written: no request was made.")), 503
        else:
            return redirect(url_for("staff.request_detail", slug=made.tenant.slug,
                                    public_id=made.public_id))
    status = 400 if request.method == "POST" else 200
    return render_template("staff/request_new.html", form=form, error=error,
                           max_hours=settings.maintenance_max_hours), status


@bp.get("/tenants/<slug:slug>/requests/<public_id>")
def request_detail(slug: str, public_id: str):
    row = _tenant_or_404(slug)
    found = requests.request_of(g.staff, public_id, tenant_id=row.id)
    if found is None:
        abort(404)
    return render_template("staff/request.html", req=found, tenant=row,
                           grant_state=access.grant_state)


# ---------------------------------------------------------------- inside a grant


def _grant_or_404(grant_id: int) -> Grant:
    grant = access.grant_of(g.staff, grant_id)
    if grant is None:
        abort(404)
    return grant


def _refused(reason: str, status: int = 403):
    return render_template("staff/refused.html", reason=reason), status


def _with_session(grant_id: int, work):
    """Run ``work(session)`` inside a fresh, logged maintenance session for this request."""
    grant = _grant_or_404(grant_id)
    try:
        with access.open_session(grant, g.staff) as session:
            return work(grant, session)
    except access.AccessDenied as exc:
        return _refused(_("Access refused: %(reason)s.", reason=str(exc)))
    except access.NotFound:
        abort(404)
    except AuditWriteError:
        return _refused(_("The access log cannot be written: access refused."), 503)


@bp.get("/grants/<int:grant_id>/")
def grant_tables(grant_id: int):
    def work(grant, session):
        return render_template("staff/grant.html", grant=grant, tables=session.tables())
    return _with_session(grant_id, work)


def _page_arg() -> int:
    return id_or_none(request.args.get("page", "1")) or 1


@bp.get("/grants/<int:grant_id>/tables/<table>")
def grant_rows(grant_id: int, table: str):
    def work(grant, session):
        page = session.rows(table, page=_page_arg(), page_size=PAGE_SIZE)
        return render_template("staff/rows.html", grant=grant, page=page)
    return _with_session(grant_id, work)


@bp.route("/grants/<int:grant_id>/tables/<table>/<record_id>", methods=["GET", "POST"])
def grant_record(grant_id: int, table: str, record_id: str):
    form = ChangeForm()
    error = None
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)

        def change(grant, session):
            session.update_field(table, record_id, form.column.data or "", form.value.data or "")
            return redirect(url_for("staff.grant_record", grant_id=grant.id, table=table,
                                    record_id=record_id))
        try:
            return _with_session(grant_id, change)
        except (ValueError, OverflowError) as exc:
            error = _("Invalid value: %(error)s", error=str(exc)[:200])
        except Exception as exc:  # the database refused the change (constraint, type…)
            from sqlalchemy.exc import DBAPIError

            if not isinstance(exc, DBAPIError):
                raise
            error = _("The database refused the change: %(error)s",
                      error=str(exc.orig).splitlines()[0][:200])

    def show(grant, session):
        record = session.record(table, record_id)
        return render_template("staff/record.html", grant=grant, record=record, form=form,
                               error=error), (400 if error else 200)
    return _with_session(grant_id, show)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
