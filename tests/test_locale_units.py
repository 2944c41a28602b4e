"""Unit tests of locale done right: the French catalogue (two plural forms, a non-breaking
space before high punctuation in every msgstr), the checks the page crawl of
``tests/test_locale.py`` relies on, ``core.dates``, plural counts of decimals and the
``QALITEL_DEFAULT_TIMEZONE`` setting. No database."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from tests.test_locale import FRENCH_PLURAL_ONE, _english_formats, visible


def test_default_time_zone_setting(tmp_path):
    from core.config import ConfigError, load

    assert load({"instance_dir": tmp_path}).default_timezone == "Europe/Paris"
    settings = load(environ={"QALITEL_INSTANCE_DIR": str(tmp_path),
                             "QALITEL_DEFAULT_TIMEZONE": "America/New_York"})
    assert settings.default_timezone == "America/New_York"
    for bad in ("Mars/Olympus", "europe/paris", "UTC; DROP"):
        with pytest.raises(ConfigError, match="QALITEL_DEFAULT_TIMEZONE"):
            load({"instance_dir": tmp_path, "default_timezone": bad})



# -- the catalogue ---------------------------------------------------------------------

def _french_catalogue():
    from babel.messages.pofile import read_po

    from tests.test_i18n import PO

    with PO.open("rb") as handle:
        return read_po(handle, locale="fr")


def test_french_plural_forms():
    catalog = _french_catalogue()
    assert catalog.num_plurals == 2 and catalog.plural_expr.replace(" ", "") == "(n>1)"
    for message in catalog:
        if isinstance(message.id, tuple) and message.string and all(message.string):
            assert len(message.string) >= 2, message.id


FRENCH_PUNCTUATION = re.compile(r"(?<![\u00a0\u202f])([:;?!])")


def _bare_punctuation(text: str) -> list[str]:
    bad = []
    for m in FRENCH_PUNCTUATION.finditer(text):
        before, after = text[m.start() - 1:m.start()], text[m.end():m.end() + 1]
        if not before:
            continue
        if m.group(1) == ":" and (after in ("/", ":") or before == ":"
                                  or (before.isdigit() and after.isdigit())):
            continue  # a URL, "::", a time such as 10:30
        if m.group(1) in ";?!" and after and (after.isalnum() or after in "=&"):
            continue  # a query string, an entity
        bad.append(text[max(m.start() - 25, 0):m.end() + 5])
    return bad


def test_every_french_msgstr_has_a_non_breaking_space_before_high_punctuation():
    bad = {}
    for message in _french_catalogue():
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        found = [b for s in strings if s for b in _bare_punctuation(s)]
        if found:
            bad[message.id if isinstance(message.id, str) else message.id[0]] = found
    assert not bad, bad


def test_the_typography_check_knows_the_exceptions():
    assert _bare_punctuation("Motif : %(reason)s") == ["Motif : %(re"]
    assert _bare_punctuation("Motif\u00a0: https://x.example/?a=1") == []
    assert _bare_punctuation("à 10:30, ::1 et Vraiment\u202f?") == []
    assert _bare_punctuation("Vraiment?") and _bare_punctuation("Ah; non")


def test_visible_text_checks_catch_english_formats_and_plurals():
    sample = visible('<p title="2026-01-05">Nov 18, 2026 <time datetime="2026-01-05">x</time>'
                     '</p><p>12/1/26, 7:58 AM</p><p>2026-11-20</p>'
                     '<p>1 actions, 1 non-conformités</p>')
    found = " ".join(_english_formats(sample))
    assert "month" in found and "M/D/YY" in found and "AM/PM" in found and "ISO date" in found
    assert "title" not in found and found.count("ISO date") == 1
    assert [m.group(1) for m in FRENCH_PLURAL_ONE.finditer(sample)] == ["actions",
                                                                          "non-conformités"]
    assert not FRENCH_PLURAL_ONE.search(visible("<p>1 action, 2 actions, 0 jour, 1 mois</p>"))


# -- core.dates -----------------------------------------------------------------------

def test_dates_in_the_readers_locale_and_zone():
    import pytz
    from flask import Flask
    from flask_babel import Babel, force_locale

    from core import dates

    app = Flask(__name__)
    Babel(app)
    paris, tokyo = pytz.timezone("Europe/Paris"), pytz.timezone("Asia/Tokyo")
    late = datetime(2026, 12, 31, 23, 30)  # naive, as SQLite hands them back: UTC
    with app.test_request_context("/"):
        with force_locale("fr"):
            assert dates.datetime_text(late, paris) == "1 janv. 2027, 00:30"
            assert dates.date_text(late, paris) == "1 janv. 2027"  # the day where the reader is
            assert dates.date_text(late, pytz.utc) == "31 déc. 2026"
            assert dates.datetime_text(late, tokyo) == "1 janv. 2027, 08:30"
            assert dates.iso_text("2026-05-03") == "3 mai 2026"
            assert dates.iso_text("2026-05-03T10:00:00.000042Z").startswith("3 mai 2026, ")
            assert dates.iso_text("2026-13-45") == "2026-13-45"  # not a date: left alone
            assert dates.iso_text("NC-2026-05") == "NC-2026-05" and dates.iso_text(7) == 7
            assert dates.from_iso("yesterday") is None
            tag = dates.time_tag(datetime(2026, 6, 1, 8, 0, tzinfo=UTC), paris)
            assert str(tag) == '<time datetime="2026-06-01T08:00:00Z">1 juin 2026, 10:00</time>'
            assert dates.date_text(None) == "" and str(dates.time_tag(None)) == ""
        with force_locale("en"):
            assert dates.datetime_text(late, paris) == "Jan 1, 2027, 12:30\u202fAM"
            assert dates.date_text(late.date()) == "Dec 31, 2026"


def test_plural_count_of_decimals():
    from flask import Flask
    from flask_babel import Babel, force_locale

    from qalitel.i18n import plural_n

    app = Flask(__name__)
    Babel(app)
    with app.test_request_context("/"):
        with force_locale("fr"):
            assert [plural_n(v) for v in (0, 1, 1.5, 2, 2.5)] == [1, 1, 1, 2, 2]
        with force_locale("en"):
            assert [plural_n(v) for v in (0, 1, 1.5, 2, 2.5)] == [2, 1, 2, 2, 2]


def test_csv_cells_are_what_the_readers_spreadsheet_reads():
    from decimal import Decimal

    from flask import Flask
    from flask_babel import Babel, force_locale

    from qalitel.records.export import csv_cell, number_cell

    app = Flask(__name__)
    Babel(app)
    with app.test_request_context("/"):
        with force_locale("fr"):
            assert number_cell(Decimal("1234.5"), 2) == "1234,50"  # a number, not text
            assert number_cell(Decimal("1.500")) == "1,5" and number_cell(None) == ""
            assert csv_cell(Decimal("1.5")) == "1,5"  # never 1 May
            assert csv_cell(date(2026, 1, 5)) == "05/01/2026"
            assert csv_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
        with force_locale("en"):
            assert number_cell(Decimal("1234.5"), 2) == "1234.50"
            assert csv_cell(date(2026, 1, 5)) == "2026-01-05"


def test_template_strings_follow_a_forced_or_refreshed_locale(tmp_path):
    """The templates' catalogue is looked up once per locale, not once per request:
    ``force_locale`` (mail in the recipient's language) and ``refresh`` still switch it."""
    from flask import render_template_string, session
    from flask_babel import force_locale, refresh

    from qalitel import create_app

    app = create_app({"instance_dir": tmp_path / "instance"}, web=False)
    page = "{{ _('Sign out') }}|{{ ngettext('%(num)d active', '%(num)d active', 2) }}"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert render_template_string(page) == "Sign out|2 active"
        with force_locale("fr"):
            assert render_template_string(page).startswith("Se déconnecter|")
        assert render_template_string(page) == "Sign out|2 active"
        session["lang"] = "fr"
        refresh()
        assert render_template_string(page).startswith("Se déconnecter|")


def test_filter_options_escape_select_and_translate_pseudonyms(tmp_path):
    """``select_options`` (the list filters' options in one call): values and texts escaped,
    only a chosen string selected, an erased person's pseudonym in the reader's language."""
    from qalitel import create_app
    from qalitel.records.web import select_options

    app = create_app({"instance_dir": tmp_path / "instance"}, web=False)
    choices = [("1", "<b>Ann</b>"), (2, "Former user 7F3A"), ("none", "(nobody)")]
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        html = str(select_options(choices, "2"))
    assert html == ('<option value="1">&lt;b&gt;Ann&lt;/b&gt;</option>'
                    '<option value="2" selected>Ancien utilisateur 7F3A</option>'
                    '<option value="none">(nobody)</option>')
    with app.test_request_context():
        assert " selected" not in str(select_options(choices, None))
        assert " selected" not in str(select_options(choices, ["2"]))
