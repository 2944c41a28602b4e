"""French by default, English available (Flask-Babel).

The locale of a request is, in order: the explicit choice stored in the tenant's preference
cookie (or, on pages outside a tenant, in the session), the browser's Accept-Language among
fr/en, else French. Catalogues live in ``qalitel/translations``; ``make`` compiles them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from flask import Flask, g, has_request_context, request, session
from flask_babel import Babel, get_locale

LANGUAGES = ("fr", "en")
DEFAULT = "fr"
LANGUAGE_NAMES = {"fr": "Français", "en": "English"}
babel = Babel()


def chosen_language() -> str | None:
    """The language the user picked explicitly, if any."""
    from qalitel.prefs import current_prefs
    from tenants.context import has_tenant

    chosen = g.get("locale")
    if chosen not in LANGUAGES and has_tenant():
        chosen = current_prefs().get("lang")
    if chosen not in LANGUAGES:
        chosen = session.get("lang")
    return chosen if chosen in LANGUAGES else None


def select_locale() -> str:
    if not has_request_context():
        return DEFAULT
    return chosen_language() or request.accept_languages.best_match(LANGUAGES) or DEFAULT


def compile_catalogs(directory: Path | None = None) -> list[Path]:
    """Compile every stale ``.po`` under ``directory`` to ``.mo`` (atomically); returns
    the files written. ``make`` runs ``pybabel compile``; tests call this as a safety net."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    from qalitel import ROOT

    directory = directory or ROOT / "qalitel" / "translations"
    written = []
    for po in sorted(directory.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=po.parent.parent.name)
        fd, tmp = tempfile.mkstemp(dir=po.parent, suffix=".mo.tmp")
        with os.fdopen(fd, "wb") as handle:
            write_mo(handle, catalog)
        os.replace(tmp, mo)
        written.append(mo)
    return written


def _template_values() -> dict[str, Any]:
    locale = get_locale()
    current = locale.language if locale is not None else DEFAULT
    return {"current_language": current if current in LANGUAGES else DEFAULT,
            "language_names": LANGUAGE_NAMES}


def init_app(app: Flask) -> None:
    from qalitel import ROOT

    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(ROOT / "qalitel" / "translations"))
    babel.init_app(app, locale_selector=select_locale)
    app.context_processor(_template_values)
