"""French by default, English available (Flask-Babel).

The locale of a request is, in order: the explicit choice stored in the tenant's preference
cookie (or, on pages outside a tenant, in the session), the browser's Accept-Language among
fr/en, else French. Catalogues live in ``qalitel/translations``; ``make`` compiles them.

The time zone of a request is the one chosen in the tenant's preference cookie (``tz``),
else ``QALITEL_DEFAULT_TIMEZONE``. Templates show dates with the filters ``date_text`` and
``datetime_text`` and ``time_tag(value)`` (:mod:`core.dates`), counts with ``ngettext``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from babel import Locale
from flask import Flask, g, has_request_context, request, session
from flask_babel import Babel, get_locale, get_translations

from core import config, dates

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


def select_timezone() -> str:
    """The zone chosen in the preference cookie (validated there), else the default."""
    from qalitel.prefs import current_prefs
    from tenants.context import has_tenant

    if has_request_context() and has_tenant():
        chosen = current_prefs().get("tz")
        if chosen:
            return chosen
    return config.settings().default_timezone


def plural_n(value: float) -> int:
    """The ``n`` to give ``ngettext`` for a count that may be a decimal (1.5 hours): 1 when
    the language's CLDR rule calls it singular ("1,5 heure", "1 hour"), else 2."""
    locale = get_locale() or Locale.parse(DEFAULT)
    return 1 if locale.plural_form(abs(value)) == "one" else 2


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


def _translations() -> Any:
    """This request's catalogue, looked up once per locale object: Flask-Babel's own lookup
    (context, domain, locale, cache key) runs for each of the ~60 strings of a page.
    ``force_locale`` and ``refresh`` replace or drop the locale object, so a cached catalogue
    never outlives the locale it was found for."""
    ctx = g.get("_flask_babel") if has_request_context() else None
    locale = getattr(ctx, "babel_locale", None)
    if locale is None:
        return get_translations()
    domain = getattr(ctx, "babel_domain", None)
    cached = getattr(ctx, "qalitel_translations", None)
    if cached is not None and cached[0] is locale and cached[1] is domain:
        return cached[2]
    translations = get_translations()
    ctx.qalitel_translations = (locale, domain, translations)
    return translations


def _install_template_gettext(app: Flask) -> None:
    """The templates' ``_``/``gettext``/``ngettext``/``pgettext`` through :func:`_translations`
    (same catalogues and new-style formatting as Flask-Babel's)."""
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
    )


def _template_values() -> dict[str, Any]:
    locale = get_locale()
    current = locale.language if locale is not None else DEFAULT
    return {"current_language": current if current in LANGUAGES else DEFAULT,
            "language_names": LANGUAGE_NAMES}


def init_app(app: Flask) -> None:
    from qalitel import ROOT

    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(ROOT / "qalitel" / "translations"))
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE",
                          app.extensions[config.EXTENSION].default_timezone)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    _install_template_gettext(app)
    app.jinja_env.filters.update(date_text=dates.date_text, datetime_text=dates.datetime_text,
                                 iso_text=dates.iso_text, from_iso=dates.from_iso)
    app.jinja_env.globals.update(time_tag=dates.time_tag, month_text=dates.month_text,
                                 plural_n=plural_n)
    app.context_processor(_template_values)
