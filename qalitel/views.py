"""Platform pages (home, health) and the tenant blueprint every client page hangs from."""

from __future__ import annotations

from flask import Blueprint, Flask, g, jsonify, render_template
from flask_login import login_required
from sqlalchemy import text

from core.db import db
from tenants import resolution

platform = Blueprint("platform", __name__)
tenant = Blueprint("tenant", __name__, url_prefix="/t/<slug:slug>")
resolution.attach(tenant)


@platform.get("/")
def home():
    return render_template("platform/home.html")


@platform.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
        state, status = "ok", 200
    except Exception:  # the answer is the state, not a traceback
        db.session.rollback()
        state, status = "unavailable", 503
    return jsonify(status="ok" if status == 200 else "error",
                   platform_database=state), status


@tenant.get("/")
@login_required
def index():
    from qalitel.records.views import dashboard

    return dashboard()


def _error(code: int, template: str):
    def handler(error):
        return render_template(template, error=error, reason=g.get("tenant_error"),
                               tenant_name=g.get("tenant_name")), code
    return handler


def _tenant_modules() -> None:
    """Hang every client module's blueprint under ``/t/<slug>`` (once per process)."""
    from maintenance.client_views import bp as maintenance_bp
    from maintenance.log_views import bp as audit_log_bp
    from qalitel.auth.views import bp as auth_bp
    from qalitel.backup_views import bp as backups_bp
    from qalitel.exports.views import bp as exports_bp
    from qalitel.my_data.views import admin as erasures_bp
    from qalitel.my_data.views import bp as my_data_bp
    from qalitel.notifications.views import bp as notifications_bp
    from qalitel.prefs_views import bp as prefs_bp
    from qalitel.records.views import bp as records_bp
    from qalitel.reports.views import bp as reports_bp
    from qalitel.user_views import account as account_bp
    from qalitel.user_views import bp as users_bp

    for child in (auth_bp, records_bp, prefs_bp, users_bp, account_bp, my_data_bp,
                  erasures_bp):
        tenant.register_blueprint(child)
    tenant.register_blueprint(audit_log_bp)
    tenant.register_blueprint(maintenance_bp)
    tenant.register_blueprint(backups_bp)
    tenant.register_blueprint(exports_bp)
    tenant.register_blueprint(reports_bp)
    tenant.register_blueprint(notifications_bp)


_tenant_modules()


def init_app(app: Flask) -> None:
    app.register_blueprint(platform)
    app.register_blueprint(tenant)
    app.register_error_handler(404, _error(404, "errors/404.html"))
    app.register_error_handler(403, _error(403, "errors/403.html"))
    app.register_error_handler(410, _error(410, "errors/tenant_status.html"))
    app.register_error_handler(423, _error(423, "errors/tenant_status.html"))
    app.register_error_handler(429, _error(429, "errors/429.html"))
