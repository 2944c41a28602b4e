"""Pseudonyms of erased accounts, shown in the reader's language.

A tombstone's name, and the mentions that replaced the person's name in free text, are
stored as "Former user 7F3A"; every rendered value (each ``{{ … }}`` of every template, and
each cell of a CSV export) shows them in the reader's language ("Ancien utilisateur 7F3A" in
French). This module imports no model: the app registers it at start-up for nothing.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask_babel import gettext as _

PSEUDONYM_PREFIX = "Former user"
_PSEUDONYM = re.compile(re.escape(PSEUDONYM_PREFIX) + r" ([0-9A-F]{4,16})\b")


def translate_pseudonyms(value: Any) -> Any:
    if not isinstance(value, str) or PSEUDONYM_PREFIX not in value:
        return value
    for code in dict.fromkeys(_PSEUDONYM.findall(value)):
        # str.replace, or Markup.replace, which escapes what it puts in: safe either way
        value = value.replace(f"{PSEUDONYM_PREFIX} {code}", _("Former user %(code)s", code=code))
    return value


def init_app(app: Flask) -> None:
    """Every ``{{ … }}`` of every template goes through :func:`translate_pseudonyms`."""
    app.jinja_options = {**app.jinja_options, "finalize": translate_pseudonyms}
    app.jinja_env.finalize = translate_pseudonyms  # in case the environment exists already
