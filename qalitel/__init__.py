"""QALITEL Host: the application factory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from core.config import EXTENSION as SETTINGS_EXTENSION
from core.config import Settings, load
from qalitel import tenancy

ROOT = Path(__file__).resolve().parent.parent

tenancy.register()


def create_app(config: Settings | Mapping[str, Any] | None = None, *, web: bool = True) -> Flask:
    """Build the app. ``config``: a Settings, or overrides of the environment's settings.

    ``web=False`` builds what commands need: settings, the platform database, tenancy and
    translations, without a blueprint, CSRF, rate limiter or login manager (``qalitel.cli``).
    """
    settings = config if isinstance(config, Settings) else load(config)
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    settings.sqlite_tenant_dir.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, template_folder=str(ROOT / "templates"),
                instance_path=str(settings.instance_dir), instance_relative_config=False)
    app.extensions[SETTINGS_EXTENSION] = settings
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        SECRET_KEY_FALLBACKS=list(settings.secret_key_fallbacks),
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_platform_engine_options(settings),
        SESSION_COOKIE_NAME="qalitel_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.https,
        PREFERRED_URL_SCHEME="https" if settings.https else "http",
        TRUSTED_HOSTS=list(settings.trusted_hosts) or None,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        **dict(settings.extra),
    )

    from core.db import db
    from qalitel import i18n, pseudonyms
    from tenants import resolution

    db.init_app(app)
    _platform_pool(app)
    resolution.init_app(app)
    i18n.init_app(app)
    pseudonyms.init_app(app)
    if web:
        _init_web(app)
    return app


def _init_web(app: Flask) -> None:
    """Pages, their security and the commands (``flask --app wsgi …``)."""
    from maintenance import console as staff_console
    from qalitel import cli, menu, prefs, prefs_views, security, views
    from qalitel.auth import views as auth

    security.init_app(app)
    menu.init_app(app)
    auth.init_app(app)
    prefs.init_app(app)
    app.register_blueprint(prefs_views.site)
    views.init_app(app)
    from qalitel.exports import closure_views

    closure_views.init_app(app)  # a closed tenant's export, outside the tenant
    cli.init_app(app)
    staff_console.init_app(app)
    from qalitel import transaction

    transaction.init_app(app)  # last: its commit runs before the other after-request hooks


def _platform_engine_options(settings: Settings) -> dict[str, Any]:
    if settings.database_url.startswith("sqlite"):
        return {"connect_args": {"check_same_thread": False}}
    return {"pool_size": settings.platform_pool_size, "max_overflow": 2,
            "pool_recycle": 1800}


def _platform_pool(app: Flask) -> None:
    """The platform pool pings only connections idle a while (``core.pool_ping``); SQLite
    connections get the tenant engines' pragmas."""
    from sqlalchemy import event

    from core.db import db
    from core.pool_ping import ping_when_idle
    from tenants.engines import harden_sqlite

    with app.app_context():
        engine = db.engine
        ping_when_idle(engine)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", lambda conn, _r: harden_sqlite(conn))
