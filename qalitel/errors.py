"""Every error page in the reader's language and inside the app's frame.

Signed in on a tenant: the tenant's menu, a home link and sign-out; otherwise the public
frame with a home link. A path under ``/t/<slug>/`` that no route answers (404, or 405 for
a refused method) has no tenant open: its language comes from that tenant's preference
cookie (:func:`tenants.resolution.tenant_of_path` reads the registry only, the tenant's
database is never opened for it). The 500 page reads no database at all: it renders when
the tenant's database is down.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, g, has_request_context, render_template, request, url_for
from flask.globals import request_ctx
from flask_babel import refresh
from flask_login import AnonymousUserMixin, current_user
from werkzeug.exceptions import HTTPException, InternalServerError

from qalitel import prefs
from tenants import resolution
from tenants.context import current_tenant, has_tenant

TEMPLATES = {
    403: "errors/403.html", 404: "errors/404.html", 405: "errors/405.html",
    409: "errors/409.html", 410: "errors/tenant_status.html", 413: "errors/413.html",
    423: "errors/tenant_status.html", 429: "errors/429.html", 500: "errors/500.html",
}
GENERIC = "errors/generic.html"
# Headers of the exception that belong on the page (Allow on 405, Retry-After on 429/503).
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def _unrouted_tenant() -> None:
    """No route, so no tenant: take the language of the tenant the path names, if any."""
    if has_tenant() or request.url_rule is not None:
        return
    info = resolution.tenant_of_path(request.path)
    if info is None:
        return
    g.error_tenant = info.slug
    lang = prefs.peek(info).get("lang")
    if lang:
        g.locale = lang
        refresh()


def _frame(database: bool) -> dict[str, Any]:
    """Template values of the frame: the tenant's (with its menu) only when signed in and
    the database may be read."""
    slug = current_tenant().slug if has_tenant() else g.get("error_tenant")
    framed = database and has_tenant() and current_user.is_authenticated
    values: dict[str, Any] = {
        "tenant_frame": framed,
        "home_url": url_for("tenant.index", slug=slug) if slug else _platform_home(),
        "error_tenant": None if has_tenant() else slug,
    }
    if not database:
        if g.get("_login_user") is None:  # Flask-Login's context processor would load it
            g._login_user = AnonymousUserMixin()
        values["in_tenant"] = False  # the footer would read the signed-in user
        values["error_tenant"] = slug
    return values


def _platform_home() -> str:
    if request.blueprint == "staff" or request.path.startswith("/staff/"):
        return url_for("staff.index")
    return url_for("platform.home")


def render_error(status: int, template: str | None = None, *, database: bool = True,
                 headers: Any = None, **context: Any) -> Response:
    """An error page (``template``, else the one of ``status``) in the app's frame."""
    if has_request_context():
        _unrouted_tenant()
    context.setdefault("reason", g.get("tenant_error"))
    context.setdefault("tenant_name", g.get("tenant_name"))
    body = render_template(template or TEMPLATES.get(status, GENERIC), status=status,
                           **_frame(database), **context)
    response = Response(body, status=status, mimetype="text/html")
    for name, value in headers or ():
        if name in KEPT_HEADERS:
            response.headers[name] = value
    return response


def _http_error(error: HTTPException) -> HTTPException | Response:
    if request_ctx.url_adapter is None:  # refused before routing (an untrusted Host)
        return error
    status = error.code or 500
    if status >= 500:
        return _server_error(error)
    return render_error(status, error=error, headers=error.get_headers())


def _server_error(error: HTTPException) -> Response:
    """No database access here (it may be what failed)."""
    status = error.code or 500
    template = "errors/500.html" if status == 500 else GENERIC
    return render_error(status, template, database=False, error=error,
                        headers=error.get_headers())


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _server_error)
