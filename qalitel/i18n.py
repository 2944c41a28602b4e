"""French by default, English available (Flask-Babel)."""

from __future__ import annotations

from flask import Flask, g, request
from flask_babel import Babel

LANGUAGES = ("fr", "en")
babel = Babel()


def select_locale() -> str:
    chosen = g.get("locale")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or "fr" if request else "fr"


def init_app(app: Flask) -> None:
    from qalitel import ROOT

    app.config.setdefault("BABEL_DEFAULT_LOCALE", "fr")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(ROOT / "qalitel" / "translations"))
    babel.init_app(app, locale_selector=select_locale)
