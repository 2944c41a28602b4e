"""Platform pages (home, health) and the tenant blueprint every client page hangs from."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, render_template, send_from_directory
from flask_login import login_required
from sqlalchemy import text

from core.db import db
from qalitel import errors
from tenants import resolution

platform = Blueprint("platform", __name__)
tenant = Blueprint("tenant", __name__, url_prefix="/t/<slug:slug>")
resolution.attach(tenant)


@platform.get("/")
def home():
    return render_template("platform/home.html")


@platform.get("/favicon.ico")
def favicon():
    """Browsers ask for it whatever the page says: the SVG icon, cached for a day."""
    from qalitel import ROOT

    return send_from_directory(ROOT / "qalitel" / "static", "favicon.svg",
                               mimetype="image/svg+xml", max_age=86400)


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
    errors.init_app(app)
