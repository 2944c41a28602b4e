"""Resolving the tenant of a request: once, from the URL (``/t/<slug>/…``) or the host
(``<slug>.<server name>``), never from a header, query parameter or cookie."""

from __future__ import annotations

from contextlib import ExitStack

from flask import Blueprint, Flask, abort, current_app, g
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from werkzeug.routing import BaseConverter

from core import config
from core.db import db
from tenants import context
from tenants.engines import EngineCache, EngineCacheFullError, TenantInfo
from tenants.registry import SLUG_RE, Tenant, TenantStatus


class SlugConverter(BaseConverter):
    regex = r"[a-z][a-z0-9-]{1,39}"


def load_tenant(slug: str) -> TenantInfo | None:
    """The registry row of ``slug`` and its server, in one platform query."""
    if not SLUG_RE.fullmatch(slug or ""):
        return None
    query = select(Tenant).options(joinedload(Tenant.server)).where(Tenant.slug == slug)
    row = db.session.execute(query).scalar_one_or_none()
    return TenantInfo.from_row(row) if row is not None else None


class SubdomainMiddleware:
    """Maps ``<slug>.<server name>/path`` to ``/t/<slug>/path``.

    A path naming another tenant than the host is refused (404) rather than served.
    """

    def __init__(self, app, server_name: str) -> None:
        self.app = app
        self.suffix = "." + server_name.lower().strip(".")

    def __call__(self, environ, start_response):
        host = environ.get("HTTP_HOST", "").lower().rsplit(":", 1)[0].rstrip(".")
        if host.endswith(self.suffix):
            slug = host[: -len(self.suffix)]
            path = environ.get("PATH_INFO", "") or "/"
            environ["qalitel.subdomain"] = slug
            if not SLUG_RE.fullmatch(slug):
                environ["PATH_INFO"] = "/t/-invalid-/"
            elif path.startswith("/t/"):
                if not (path == f"/t/{slug}" or path.startswith(f"/t/{slug}/")):
                    environ["PATH_INFO"] = "/t/-mismatch-/"
            elif not path.startswith("/static/") and path != "/healthz":
                environ["PATH_INFO"] = f"/t/{slug}{path}"
        return self.app(environ, start_response)


def tenant_of_path(path: str) -> TenantInfo | None:
    """The active tenant a ``/t/<slug>/…`` path names, from the registry only (nothing of
    its database is opened): what an unrouted path's error page may know of it."""
    parts = (path or "").split("/", 3)
    if len(parts) < 3 or parts[0] or parts[1] != "t":
        return None
    info = load_tenant(parts[2])
    return info if info is not None and info.status is TenantStatus.ACTIVE else None


def _open_tenant(_endpoint: str | None, values: dict | None) -> None:
    slug = (values or {}).pop("slug", None)
    if slug is None:
        abort(404)
    info = load_tenant(slug)
    if info is None or info.status is TenantStatus.PROVISIONING:
        g.tenant_error = "unknown"
        abort(404)
    if info.status is TenantStatus.SUSPENDED:
        g.tenant_error = "suspended"
        g.tenant_name = info.name
        abort(423)
    if info.status is TenantStatus.CLOSED:
        g.tenant_error = "closed"
        g.tenant_name = info.name
        abort(410)
    cache: EngineCache = current_app.extensions["qalitel_engines"]
    stack = ExitStack()
    try:
        engine = stack.enter_context(cache.lease(info))
    except EngineCacheFullError:
        # Every engine of this process is busy past the pool timeout: say "try again".
        abort(503)
    token = context.enter(info, engine)
    stack.callback(context.leave, token)
    g._tenant_stack = stack


def _add_slug(endpoint: str, values: dict) -> None:
    if "slug" not in values and context.has_tenant():
        values["slug"] = context.current_tenant().slug


def _close_tenant(_exc: BaseException | None) -> None:
    stack = g.pop("_tenant_stack", None)
    if stack is not None:
        stack.close()


def attach(bp: Blueprint) -> None:
    """Make ``bp`` (prefixed ``/t/<slug:slug>``) resolve its tenant for every request."""
    bp.url_value_preprocessor(_open_tenant)
    bp.url_defaults(_add_slug)


def init_app(app: Flask) -> None:
    app.url_map.converters["slug"] = SlugConverter
    app.extensions["qalitel_engines"] = EngineCache(app.extensions[config.EXTENSION])
    app.teardown_request(_close_tenant)
    server_name = app.extensions[config.EXTENSION].server_name
    if server_name:
        app.wsgi_app = SubdomainMiddleware(app.wsgi_app, server_name)  # type: ignore[method-assign]
