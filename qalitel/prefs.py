"""The one-year preference cookie ``qalitel_prefs``.

It remembers the connection data (tenant slug and login name — never a credential) and the
user's preferences, so the next visit opens an environment like the last one. It is signed
(itsdangerous, with Flask's ``SECRET_KEY_FALLBACKS`` for rotation), scoped to its tenant
(``Path=/t/<slug>/`` in path mode, host-only in subdomain mode), and survives logout.
A tampered, expired, oversize or other-tenant cookie is ignored.

Views read with :func:`current_prefs` / :func:`list_prefs` and change with :func:`set_pref`
/ :func:`save_list_prefs`; the cookie is written once, after the request.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, g, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from tenants.context import current_tenant, has_tenant

COOKIE = "qalitel_prefs"
MAX_AGE = 365 * 24 * 3600
MAX_BYTES = 3800
SALT = "qalitel-prefs-v1"

LANGUAGES = ("fr", "en")
DENSITIES = ("comfortable", "compact")
PAGE_SIZES = (10, 25, 50, 100)
MAX_LISTS = 8
MAX_FILTERS = 10
MAX_VALUE = 120


def _serializer() -> URLSafeTimedSerializer:
    keys = [*current_app.config.get("SECRET_KEY_FALLBACKS", []), current_app.secret_key]
    return URLSafeTimedSerializer(keys, salt=SALT)


def _clean_str(value: Any, limit: int = MAX_VALUE) -> str | None:
    if not isinstance(value, str) or len(value) > limit or any(ord(c) < 32 for c in value):
        return None
    return value


def _clean_path(value: Any, slug: str) -> str | None:
    path = _clean_str(value, 300)
    if path is None or not path.startswith(f"/t/{slug}/") or "//" in path or "\\" in path:
        return None
    return path


def _clean_list(value: Any) -> dict | None:
    if not isinstance(value, dict):
        return None
    out: dict[str, Any] = {}
    filters = value.get("filters")
    if isinstance(filters, dict):
        kept = {}
        for key, item in list(filters.items())[:MAX_FILTERS]:
            k, v = _clean_str(key, 40), _clean_str(item)
            if k and v is not None and v != "":
                kept[k] = v
        out["filters"] = kept
    sort = _clean_str(value.get("sort"), 40)
    if sort:
        out["sort"] = sort
    if value.get("page_size") in PAGE_SIZES:
        out["page_size"] = value["page_size"]
    return out


def sanitize(data: Any, slug: str) -> dict[str, Any]:
    """Keep only known keys with acceptable values; anything else is dropped."""
    if not isinstance(data, dict) or data.get("tenant") != slug:
        return {}
    out: dict[str, Any] = {"tenant": slug}
    login = _clean_str(data.get("login"), 254)
    if login:
        out["login"] = login
    if data.get("lang") in LANGUAGES:
        out["lang"] = data["lang"]
    if data.get("density") in DENSITIES:
        out["density"] = data["density"]
    for key in ("start", "last"):
        path = _clean_path(data.get(key), slug)
        if path:
            out[key] = path
    lists = data.get("lists")
    if isinstance(lists, dict):
        kept = {}
        for name, value in list(lists.items())[:MAX_LISTS]:
            cleaned = _clean_list(value)
            if _clean_str(name, 40) and cleaned is not None:
                kept[name] = cleaned
        out["lists"] = kept
    return out


def _load() -> dict[str, Any]:
    if not has_tenant():
        return {}
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 4096:
        return {}
    try:
        data = _serializer().loads(raw, max_age=MAX_AGE)
    except (BadSignature, ValueError, TypeError):
        return {}
    return sanitize(data, current_tenant().slug)


def current_prefs() -> dict[str, Any]:
    """This request's preferences (changes made during the request included)."""
    if "prefs" not in g:
        g.prefs = _load()
    return g.prefs


def _changed() -> dict[str, Any]:
    prefs = current_prefs()
    prefs["tenant"] = current_tenant().slug
    g.prefs_dirty = True
    return prefs


def set_pref(key: str, value: Any) -> None:
    """Set a top-level preference (login, lang, density, start, last)."""
    if not has_tenant():
        return
    _changed()[key] = value


def list_prefs(name: str) -> dict[str, Any]:
    return dict(current_prefs().get("lists", {}).get(name, {}))


def save_list_prefs(name: str, filters: dict[str, str], sort: str | None,
                    page_size: int | None) -> None:
    if not has_tenant():
        return
    prefs = _changed()
    lists = prefs.setdefault("lists", {})
    entry: dict[str, Any] = {"filters": {k: v for k, v in filters.items() if v}}
    if sort:
        entry["sort"] = sort
    if page_size:
        entry["page_size"] = page_size
    lists.pop(name, None)
    lists[name] = entry


def _encode(prefs: dict[str, Any]) -> str:
    """Sign the sanitized prefs, dropping the oldest list settings until it fits."""
    data = sanitize(prefs, current_tenant().slug)
    while True:
        value = _serializer().dumps(data)
        if len(value) <= MAX_BYTES:
            return value
        lists = data.get("lists") or {}
        if lists:
            lists.pop(next(iter(lists)))
        elif "last" in data:
            data.pop("last")
        else:
            return _serializer().dumps({"tenant": data["tenant"]})


def cookie_path() -> str:
    if request.environ.get("qalitel.subdomain"):
        return "/"
    return f"/t/{current_tenant().slug}/"


def _write(response: Response) -> Response:
    if not g.get("prefs_dirty") or not has_tenant():
        return response
    settings = current_app.extensions["qalitel_settings"]
    response.set_cookie(COOKIE, _encode(current_prefs()), max_age=MAX_AGE, path=cookie_path(),
                        secure=settings.https, httponly=True, samesite="Lax")
    return response


def forget(response: Response) -> Response:
    """Delete the cookie ("forget me on this device")."""
    response.delete_cookie(COOKIE, path=cookie_path(), httponly=True, samesite="Lax")
    return response


def init_app(app: Flask) -> None:
    app.after_request(_write)
