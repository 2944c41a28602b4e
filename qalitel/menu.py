"""The main menu of tenant pages (``templates/_menu.html``), rendered once per app for each
place, language and profile, then reused: it is the same on every page of a tenant for those
three, and rendering it (a dozen links and translations) cost more than a list row. The
place is the request's scheme and host and the tenant's home URL (``url_for("tenant.index")``:
script root and slug, what the menu's links are built from); the language is the request's
locale; the profile is the signed-in user's, which alone decides which links are shown.
"""

from __future__ import annotations

from flask import Flask, current_app, render_template, request, url_for
from flask_babel import get_locale
from flask_login import current_user
from markupsafe import Markup
from werkzeug.routing import BuildError

EXTENSION = "qalitel_menus"
MAX_MENUS = 1024
"""Menus kept per app (tenants × languages × profiles seen); all dropped when full."""


def _render() -> Markup:
    html = render_template("_menu.html").strip()  # autoescaped by Jinja: safe HTML
    return Markup(html)  # noqa: S704


def tenant_menu() -> Markup:
    """The menu for this request (signed-in users of a tenant)."""
    try:
        home = url_for("tenant.index")
    except BuildError:  # outside a tenant: nothing to keep it for
        return _render()
    key = (request.scheme, request.host, home, str(get_locale()),
           str(getattr(current_user, "profile", None)))
    menus: dict[tuple[str, ...], Markup] = current_app.extensions[EXTENSION]
    menu = menus.get(key)
    if menu is None:
        menu = _render()
        if len(menus) >= MAX_MENUS:
            menus.clear()
        menus[key] = menu
    return menu


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = {}
    app.add_template_global(tenant_menu)
