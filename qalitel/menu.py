"""The main menu of tenant pages (``templates/_menu.html``), rendered once per app for each
place, language and profile, then reused: it is the same on every page of a tenant for those
three, and rendering it (a dozen links and translations) cost more than a list row. The
place is the tenant's home URL (``url_for("tenant.index")``: script root and slug, what the
menu's relative links are built from; never the Host header, which a client chooses); the
language is the request's locale; the profile is the signed-in user's, which alone decides
which links are shown.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from flask import Flask, current_app, render_template, url_for
from flask_babel import get_locale
from flask_login import current_user
from markupsafe import Markup
from werkzeug.routing import BuildError

EXTENSION = "qalitel_menus"
MAX_MENUS = 1024
"""Menus kept per app (tenants × languages × profiles seen); the least recently used goes
first."""
_lock = threading.Lock()


def _render() -> Markup:
    html = render_template("_menu.html").strip()  # autoescaped by Jinja: safe HTML
    return Markup(html)  # noqa: S704


def tenant_menu() -> Markup:
    """The menu for this request (signed-in users of a tenant)."""
    try:
        home = url_for("tenant.index")
    except BuildError:  # outside a tenant: nothing to keep it for
        return _render()
    key = (home, str(get_locale()), str(getattr(current_user, "profile", None)))
    menus: OrderedDict[tuple[str, ...], Markup] = current_app.extensions[EXTENSION]
    with _lock:
        menu = menus.get(key)
        if menu is not None:
            menus.move_to_end(key)
            return menu
    menu = _render()
    with _lock:
        menus[key] = menu
        while len(menus) > MAX_MENUS:
            menus.popitem(last=False)
    return menu


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = OrderedDict()
    app.add_template_global(tenant_menu)
