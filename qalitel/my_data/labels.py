"""Pseudonyms shown in the reader's language in every template
(:func:`qalitel.users.labels.translate_pseudonyms`)."""

from __future__ import annotations

from flask import Flask

from qalitel.users.labels import PSEUDONYM_PREFIX, translate_pseudonyms

__all__ = ["PSEUDONYM_PREFIX", "init_app", "translate_pseudonyms"]


def init_app(app: Flask) -> None:
    """Every ``{{ … }}`` of every template goes through :func:`translate_pseudonyms`."""
    app.jinja_options = {**app.jinja_options, "finalize": translate_pseudonyms}
    app.jinja_env.finalize = translate_pseudonyms  # in case the environment exists already
