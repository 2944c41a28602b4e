"""Preferences page, "forget me on this device", the language switch and the privacy page.

``bp`` hangs under the tenant (``/t/<slug>/…``); ``site`` serves the same language switch
and privacy page where no tenant is involved (platform pages, unknown tenants).
"""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.fields.choices import SelectChoice

from core import config
from core.validation import safe_redirect, time_zones
from qalitel import prefs
from qalitel.closure.service import POLICY_MARGIN_DAYS
from qalitel.i18n import LANGUAGE_NAMES, LANGUAGES
from tenants.context import current_tenant

bp = Blueprint("prefs", __name__)
site = Blueprint("site", __name__)

# start-page choice -> endpoint; a choice is offered only when its module is installed.
START_PAGES = (
    ("dashboard", "tenant.index", _l("Dashboard")),
    ("records", "tenant.records.index", _l("Non-conformities")),
    ("actions", "tenant.records.actions", _l("Actions")),
)
LAST_PAGE = "last"
DEFAULT_ZONE = ""


class PreferencesForm(FlaskForm):
    lang = SelectField(_l("Language"),
                       choices=[SelectChoice(code, name) for code, name in LANGUAGE_NAMES.items()])
    tz = SelectField(_l("Time zone"), default=DEFAULT_ZONE)
    start = SelectField(_l("Start page after sign-in"))
    density = SelectField(_l("Display density"),
                          choices=[SelectChoice("comfortable", _l("Comfortable")),
                                   SelectChoice("compact", _l("Compact"))])


def _start_choices() -> list[tuple[str, str, str | None]]:
    """(key, label, path) of the start pages this installation offers."""
    choices: list[tuple[str, str, str | None]] = [
        (LAST_PAGE, str(_l("The last page I visited")), None)]
    for key, endpoint, label in START_PAGES:
        if endpoint in current_app.view_functions:
            choices.append((key, str(label), url_for(endpoint)))
    return choices


def _zone_choices() -> list[SelectChoice]:
    """The installation's zone first (stored as no choice: it follows the setting)."""
    default = config.settings().default_timezone
    return [SelectChoice(DEFAULT_ZONE, str(_l("Default (%(zone)s)", zone=default))),
            *(SelectChoice(zone, zone.replace("_", " ")) for zone in time_zones())]


@bp.route("/preferences", methods=["GET", "POST"])
@login_required
def preferences():
    current = prefs.current_prefs()
    starts = _start_choices()
    form = PreferencesForm()
    form.start.choices = [SelectChoice(key, label) for key, label, _path in starts]
    form.tz.choices = _zone_choices()
    if form.validate_on_submit():
        prefs.set_pref("lang", form.lang.data)
        prefs.set_pref("tz", form.tz.data or None)
        prefs.set_pref("density", form.density.data)
        path = next((p for key, _label, p in starts if key == form.start.data), None)
        prefs.set_pref("start", path)
        flash(_l("Preferences saved."), "info")
        return redirect(url_for("tenant.prefs.preferences"))
    if request.method == "GET":
        form.lang.data = current.get("lang") or _active_language()
        form.tz.data = current.get("tz") or DEFAULT_ZONE
        form.density.data = current.get("density", prefs.DENSITIES[0])
        form.start.data = next((key for key, _label, path in starts
                                if path and path == current.get("start")), LAST_PAGE)
    return render_template("preferences.html", form=form)


@bp.post("/preferences/forget")
def forget():
    prefs.forget_prefs()
    flash(_l("This device no longer remembers you or your preferences."), "info")
    target = safe_redirect(request.form.get("next"), f"/t/{current_tenant().slug}/")
    return redirect(target or url_for("tenant.auth.login"))


@bp.post("/language")
def language():
    lang = request.form.get("lang")
    if lang in LANGUAGES:
        prefs.set_pref("lang", lang)
    target = safe_redirect(request.form.get("next"), f"/t/{current_tenant().slug}/")
    return redirect(target or url_for("tenant.auth.login"))


@bp.get("/privacy")
def privacy():
    return _privacy_page(in_tenant=True)


@site.post("/language")
def platform_language():
    lang = request.form.get("lang")
    if lang in LANGUAGES:
        session["lang"] = lang
    return redirect(safe_redirect(request.form.get("next"), "/") or url_for("platform.home"))


@site.get("/privacy")
def platform_privacy():
    return _privacy_page(in_tenant=False)


def _privacy_page(in_tenant: bool):
    settings = config.settings()
    return render_template("privacy.html", in_tenant=in_tenant,
                           remember_days=settings.remember_days,
                           backup_days=settings.backup_retention_days,
                           grace_days=settings.closure_grace_days,
                           retention_days=settings.backup_retention_days,
                           purge_days=closure_purge_days(settings),
                           margin_days=POLICY_MARGIN_DAYS,
                           login_days=settings.login_history_days,
                           export_days=settings.export_days)


def closure_purge_days(settings: config.Settings) -> int:
    """The latest day, counted from a closure, by which nothing of the company is left:
    grace, backup window, then the policy's margin (as the closure's purge date)."""
    return (settings.closure_grace_days + settings.backup_retention_days
            + POLICY_MARGIN_DAYS)


def _active_language() -> str:
    from flask_babel import get_locale

    locale = get_locale()
    return locale.language if locale is not None and locale.language in LANGUAGES else "fr"
