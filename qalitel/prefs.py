"""The one-year preference cookie ``qalitel_prefs``.

It remembers the connection data (tenant and login name — never a password, hash or session
token) and the user's preferences, so the next visit opens an environment like the last one.
It is signed (itsdangerous, with Flask's ``SECRET_KEY_FALLBACKS`` for key rotation), scoped
to its tenant (``Path=/t/<slug>/`` in path mode, host-only ``Path=/`` in subdomain mode),
``HttpOnly``, ``SameSite=Lax``, ``Secure`` behind HTTPS, and survives logout.
A tampered, expired, oversize, malformed or other-tenant cookie is ignored, never an error.

Views read with :func:`current_prefs` / :func:`list_prefs` / :func:`landing_path` and change
with :func:`set_pref` / :func:`save_list_prefs` / :func:`remember_page`; the cookie is written
once, after the request, and only when something changed or its signature is a day old (the
year rolls on from the last day of use, at the cost of one cookie a day, not one a response).
:func:`forget_prefs` deletes it.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from flask import Flask, Response, current_app, g, has_request_context, request
from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from core import config
from core.validation import has_forbidden_characters, is_time_zone, safe_redirect
from tenants.context import current_tenant, has_tenant
from tenants.engines import TenantInfo

COOKIE = "qalitel_prefs"
MAX_AGE = 365 * 24 * 3600
# Budget of the signed value; with the name and attributes the header stays far below the
# 4096 bytes browsers keep per cookie.
MAX_BYTES = 3800
MAX_INCOMING = 4096
SALT = "qalitel-prefs-v1"
# The year runs from the last use: an unchanged cookie is re-signed (and sent again) once its
# signature is a day old, not on every response.
REFRESH_AFTER = 24 * 3600  # seconds, on the clock itsdangerous signs and expires with

LANGUAGES = ("fr", "en")
DENSITIES = ("comfortable", "compact")
PAGE_SIZES = (10, 25, 50, 100)
MAX_PAGE_SIZE = 500
MAX_LISTS = 8
MAX_FILTERS = 10
MAX_FILTER_ITEMS = 10
MAX_VALUE = 120
MAX_PATH = 300
TOP_KEYS = ("login", "lang", "tz", "density", "start", "last")
# Pages never used as a landing page after sign-in.
NOT_LANDING = ("tenant.auth.", "tenant.prefs.forget", "tenant.prefs.language")


def _serializer(current_only: bool = False) -> URLSafeTimedSerializer:
    # itsdangerous signs with the last key and accepts any of them.
    fallbacks = [] if current_only else current_app.config.get("SECRET_KEY_FALLBACKS", [])
    return URLSafeTimedSerializer([*fallbacks, current_app.secret_key], salt=SALT)


def _clean_str(value: Any, limit: int = MAX_VALUE) -> str | None:
    if not isinstance(value, str) or len(value) > limit or has_forbidden_characters(value):
        return None
    return value


def _clean_path(value: Any, slug: str) -> str | None:
    """A local path inside the tenant (``/t/<slug>/…``), or None."""
    if not isinstance(value, str) or len(value) > MAX_PATH:
        return None
    return safe_redirect(value, f"/t/{slug}/")


def _clean_filter_value(value: Any) -> str | list[str] | None:
    if isinstance(value, list):
        items = [_clean_str(item) for item in value[:MAX_FILTER_ITEMS]]
        kept = [item for item in items if item]
        return kept or None
    cleaned = _clean_str(value)
    return cleaned or None


def _clean_page_size(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_PAGE_SIZE:
        return value
    return None


def _clean_list(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    out: dict[str, Any] = {}
    filters = value.get("filters")
    if isinstance(filters, dict):
        kept = {}
        for key, item in list(filters.items())[:MAX_FILTERS]:
            name, cleaned = _clean_str(key, 40), _clean_filter_value(item)
            if name and cleaned is not None:
                kept[name] = cleaned
        out["filters"] = kept
    sort = _clean_str(value.get("sort"), 40)
    if sort:
        out["sort"] = sort
    page_size = _clean_page_size(value.get("page_size"))
    if page_size:
        out["page_size"] = page_size
    return out


def sanitize(data: Any, slug: str, uid: str | None = None) -> dict[str, Any]:
    """Keep only known keys with acceptable values; anything else is dropped.

    A cookie of another tenant (slug, or uid when given) gives ``{}``.
    """
    if not isinstance(data, dict) or data.get("tenant") != slug:
        return {}
    if uid is not None and data.get("uid") != uid:
        return {}
    out: dict[str, Any] = {"tenant": slug}
    if uid is not None:
        out["uid"] = uid
    login = _clean_str(data.get("login"), 254)
    if login and "@" in login and not any(c.isspace() for c in login):
        out["login"] = login
    if isinstance(data.get("lang"), str) and data["lang"] in LANGUAGES:
        out["lang"] = data["lang"]
    if is_time_zone(data.get("tz")):
        out["tz"] = data["tz"]
    if isinstance(data.get("density"), str) and data["density"] in DENSITIES:
        out["density"] = data["density"]
    for key in ("start", "last"):
        path = _clean_path(data.get(key), slug)
        if path:
            out[key] = path
    lists = data.get("lists")
    if isinstance(lists, dict):
        kept = {}
        # The most recently saved lists are last: keep those.
        for name, value in list(lists.items())[-MAX_LISTS:]:
            cleaned = _clean_list(value)
            if _clean_str(name, 40) and cleaned is not None:
                kept[name] = cleaned
        if kept:
            out["lists"] = kept
    return out


def _tenant_ids() -> tuple[str, str]:
    info = current_tenant()
    return info.slug, info.uid


def _load() -> dict[str, Any]:
    if not has_tenant() or not has_request_context():
        return {}
    return _read(*_tenant_ids())


def peek(info: TenantInfo) -> dict[str, Any]:
    """The preferences this request's cookie holds for ``info`` while no tenant is open (an
    unrouted path's error page); read-only, never written back."""
    if not has_request_context():
        return {}
    return _read(info.slug, info.uid, resign=False)


def _read(slug: str, uid: str, resign: bool = True) -> dict[str, Any]:
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > MAX_INCOMING:
        return {}
    errors = (BadData, ValueError, TypeError, UnicodeError, RecursionError)
    try:
        data, signed_at = _serializer(current_only=True).loads(raw, max_age=MAX_AGE,
                                                               return_timestamp=True)
    except errors:
        if not current_app.config.get("SECRET_KEY_FALLBACKS"):
            return {}
        try:
            data = _serializer().loads(raw, max_age=MAX_AGE)
        except errors:
            return {}
        cleaned = sanitize(data, slug, uid)
        if resign:
            g.prefs_dirty = bool(cleaned)  # signed with a previous key: re-sign with the current
        return cleaned
    cleaned = sanitize(data, slug, uid)
    if resign and cleaned and time.time() - signed_at.timestamp() > REFRESH_AFTER:
        g.prefs_dirty = True  # the year rolls on from the last day the cookie was used
    return cleaned


def current_prefs() -> dict[str, Any]:
    """This request's preferences (changes made during the request included).

    Treat it as read-only: change it through :func:`set_pref` / :func:`save_list_prefs`.
    """
    if not has_request_context():
        return {}
    if "prefs" not in g:
        g.prefs = _load()
    return g.prefs


def _replace(candidate: dict[str, Any]) -> None:
    """Sanitize ``candidate`` and mark the cookie for writing if it differs."""
    slug, uid = _tenant_ids()
    cleaned = sanitize({**candidate, "tenant": slug, "uid": uid}, slug, uid)
    if cleaned != current_prefs():
        g.prefs = cleaned
        g.prefs_dirty = True
        g.pop("prefs_forget", None)


def set_pref(key: str, value: Any) -> None:
    """Set a top-level preference (login, lang, tz, density, start, last); None removes it.

    Unknown keys and unacceptable values are dropped, so nothing but what
    :func:`sanitize` allows ever reaches the cookie.
    """
    if not has_tenant() or not has_request_context() or key not in TOP_KEYS:
        return
    candidate = copy.deepcopy(current_prefs())
    if value is None:
        candidate.pop(key, None)
    else:
        candidate[key] = value
    _replace(candidate)


def remember_page() -> None:
    """Remember the current GET page as the last visited one."""
    if request.method == "GET":
        set_pref("last", request.full_path.rstrip("?"))


def list_prefs(name: str) -> dict[str, Any]:
    """``{"filters": {...}, "sort": str|None, "page_size": int|None}`` saved for list ``name``."""
    saved = copy.deepcopy(current_prefs().get("lists", {}).get(name, {}))
    return {"filters": saved.get("filters", {}), "sort": saved.get("sort"),
            "page_size": saved.get("page_size")}


def save_list_prefs(name: str, filters: dict[str, Any], sort: str | None,
                    page_size: int | None) -> None:
    """Remember a list's filters, sort and page size (the most recent lists are kept)."""
    if not has_tenant() or not has_request_context():
        return
    candidate = copy.deepcopy(current_prefs())
    lists = candidate.get("lists") or {}
    entry: dict[str, Any] = {"filters": {k: v for k, v in (filters or {}).items() if v}}
    if sort:
        entry["sort"] = sort
    if page_size:
        entry["page_size"] = page_size
    lists.pop(name, None)
    lists[name] = entry
    candidate["lists"] = lists
    _replace(candidate)


def landing_path(requested: str | None = None) -> str | None:
    """Where to land after sign-in: ``requested`` (an already checked ``next``) unless it is
    the bare tenant root, else the chosen start page, else the last visited page — if it is a
    page of this tenant a GET can reach — else None (the caller's default)."""
    if requested and requested.split("?", 1)[0] != f"/t/{current_tenant().slug}/":
        return requested
    prefs = current_prefs()
    for key in ("start", "last"):
        path = prefs.get(key)
        if path and _is_landing_page(path):
            return path
    return requested


def _is_landing_page(path: str) -> bool:
    slug, _uid = _tenant_ids()
    if _clean_path(path, slug) is None:
        return False
    adapter = current_app.url_map.bind("localhost")
    try:
        endpoint, _args = adapter.match(path.split("?", 1)[0], method="GET")
    except RequestRedirect:
        return False
    except HTTPException:
        return False
    return not any(endpoint.startswith(prefix) for prefix in NOT_LANDING)


def _shrink(data: dict[str, Any]) -> bool:
    """Drop the least valuable part of ``data``; False when nothing is left to drop."""
    lists = data.get("lists") or {}
    if len(lists) > 1:
        lists.pop(next(iter(lists)))
        return True
    if lists:
        entry = next(iter(lists.values()))
        filters = entry.get("filters") or {}
        if filters:
            filters.pop(next(reversed(filters)))
        else:
            data.pop("lists")
        return True
    for key in ("last", "start", "login"):
        if key in data:
            data.pop(key)
            return True
    return False


def _encode(prefs: dict[str, Any]) -> str:
    """Sign the sanitized prefs, dropping the oldest list settings until it fits."""
    slug, uid = _tenant_ids()
    data = sanitize(copy.deepcopy(prefs), slug, uid)
    serializer = _serializer()
    while True:
        value = serializer.dumps(data)
        if len(value) <= MAX_BYTES or not _shrink(data):
            return value


def cookie_path() -> str:
    """``/`` on ``<slug>.<server name>`` (host-only cookie), ``/t/<slug>/`` otherwise."""
    if request.environ.get("qalitel.subdomain"):
        return "/"
    return f"/t/{current_tenant().slug}/"


def forget_prefs() -> None:
    """Delete the cookie when this response goes out ("forget me on this device")."""
    if has_tenant():
        g.prefs = {}
        g.prefs_dirty = False
        g.prefs_forget = True


def forget(response: Response) -> Response:
    """Delete the cookie on ``response`` now."""
    settings = config.settings()
    response.delete_cookie(COOKIE, path=cookie_path(), secure=settings.https, httponly=True,
                           samesite="Lax")
    return response


def _write(response: Response) -> Response:
    if not has_tenant():
        return response
    if g.get("prefs_forget"):
        return forget(response)
    if not g.get("prefs_dirty"):
        return response
    settings = config.settings()
    response.set_cookie(COOKIE, _encode(current_prefs()), max_age=MAX_AGE, path=cookie_path(),
                        secure=settings.https, httponly=True, samesite="Lax")
    return response


def _template_values() -> dict[str, Any]:
    prefs = current_prefs() if has_tenant() else {}
    return {"in_tenant": has_tenant(), "prefs_density": prefs.get("density", DENSITIES[0]),
            "prefs_remembered": bool(prefs)}


def init_app(app: Flask) -> None:
    """The cookie's writer and template values (create_app registers ``prefs_views``)."""
    app.after_request(_write)
    app.context_processor(_template_values)
