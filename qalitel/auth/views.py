"""Sign-in, sign-out and password reset at a tenant.

A session is a login only at the tenant that issued it: the Flask-Login id is
``<tenant uid>:<user id>:<session token>`` and :func:`load_user` checks all three against the
current tenant, so a session or remember cookie from tenant A is nobody at tenant B, and
rotating the token (password change, suspension) ends every session of the user at once.

The optional remember cookie ``qalitel_remember`` (Flask-Login) is scoped like the preference
cookie: ``Path=/t/<slug>/`` (host-only ``/`` on ``<slug>.<server name>``). Flask-Login reads
``REMEMBER_COOKIE_PATH`` from the app config, which cannot vary per request, so
:class:`TenantLoginManager` sets and clears the cookie with the tenant's path itself.

``GET /t/<slug>/logout`` shows a confirmation form (a link or image from another site cannot
sign anybody out); the form, like the one in the page header, POSTs with its CSRF token.
"""

from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_login.utils import encode_cookie
from sqlalchemy import select
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from core import config, validation
from core.forms import Checked, SafeForm
from qalitel import prefs
from qalitel.auth import service, throttle
from qalitel.auth.throttle import Rule, throttled
from qalitel.i18n import LANGUAGES
from qalitel.my_data import logins
from qalitel.users.models import User
from qalitel.users.service import (
    EMAIL_MAX,
    PASSWORD_MAX,
    UserError,
    check_credentials,
    end_sessions,
    find_by_email,
    set_password,
)
from tenants.context import current_tenant, has_tenant, tdb

REMEMBER_COOKIE = "qalitel_remember"

bp = Blueprint("auth", __name__)


def tenant_cookie_path() -> str:
    """``/`` on ``<slug>.<server name>`` (host-only cookie), ``/t/<slug>/`` otherwise."""
    if not has_tenant() or request.environ.get("qalitel.subdomain"):
        return "/"
    return f"/t/{current_tenant().slug}/"


class TenantLoginManager(LoginManager):
    """Flask-Login whose remember cookie is scoped to the current tenant's path."""

    def _set_cookie(self, response):  # type: ignore[override]
        config = current_app.config
        duration = config.get("REMEMBER_COOKIE_DURATION", timedelta(days=30))
        if "_remember_seconds" in session:
            duration = timedelta(seconds=session["_remember_seconds"])
        response.set_cookie(
            config.get("REMEMBER_COOKIE_NAME", REMEMBER_COOKIE),
            value=encode_cookie(str(session["_user_id"])),
            max_age=int(duration.total_seconds()), path=tenant_cookie_path(),
            secure=config.get("REMEMBER_COOKIE_SECURE", False),
            httponly=config.get("REMEMBER_COOKIE_HTTPONLY", True),
            samesite=config.get("REMEMBER_COOKIE_SAMESITE", "Lax"))

    def _clear_cookie(self, response):  # type: ignore[override]
        clear_remember_cookie(response)

    def _load_user_from_remember_cookie(self, cookie):  # type: ignore[override]
        """A cookie that loads nobody (rotated token, suspension, other tenant) is deleted
        instead of being tried again on every request."""
        user = super()._load_user_from_remember_cookie(cookie)
        if user is None:
            session.pop("_user_id", None)
            session.pop("_fresh", None)
            session["_remember"] = "clear"
        return user


login_manager = TenantLoginManager()
login_manager.session_protection = "basic"


def clear_remember_cookie(response) -> None:
    config = current_app.config
    response.delete_cookie(config.get("REMEMBER_COOKIE_NAME", REMEMBER_COOKIE),
                           path=tenant_cookie_path(),
                           secure=config.get("REMEMBER_COOKIE_SECURE", False),
                           httponly=True, samesite=config.get("REMEMBER_COOKIE_SAMESITE", "Lax"))


def has_remember_cookie() -> bool:
    return current_app.config.get("REMEMBER_COOKIE_NAME", REMEMBER_COOKIE) in request.cookies


class LoginForm(SafeForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=EMAIL_MAX),
                                                Checked(validation.check_email)])
    password = PasswordField(_l("Password"),
                             validators=[DataRequired(), Length(max=PASSWORD_MAX)])
    remember = BooleanField(_l("Keep me signed in on this device"), default=False)


class ForgotForm(SafeForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=EMAIL_MAX),
                                                Checked(validation.check_email)])


class NewPasswordForm(SafeForm):
    password = PasswordField(_l("New password"), validators=[
        DataRequired(), Checked(validation.check_password)])
    confirm = PasswordField(_l("Repeat the new password"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords differ."))])


class LogoutForm(SafeForm):
    """CSRF only."""


@login_manager.user_loader
def load_user(identifier: str) -> User | None:
    if not has_tenant() or not isinstance(identifier, str) or len(identifier) > 200:
        return None
    parts = identifier.split(":")
    user_id = validation.id_or_none(parts[1]) if len(parts) == 3 else None
    if user_id is None or parts[0] != current_tenant().uid:
        return None
    user = tdb.execute(select(User).where(User.id == user_id)).scalar_one_or_none()
    if user is None or user.session_token != parts[2] or user.is_suspended:
        return None
    return user


@login_manager.unauthorized_handler
def unauthorized():
    if not has_tenant():
        return render_template("errors/404.html"), 404
    return redirect(url_for("tenant.auth.login", next=request.full_path.rstrip("?")))


def safe_next(target: str | None) -> str | None:
    """A local path inside the current tenant, or None."""
    return validation.safe_redirect(target, f"/t/{current_tenant().slug}/")


# Session keys that are preferences, not sign-in state: kept when a new session starts.
KEPT_ON_SIGN_IN = ("lang",)


def sign_in(user: User, remember: bool) -> None:
    """Start a fresh session for ``user`` (also used after a password change): nothing of
    the previous session's state (CSRF secret, another tenant's login) carries over."""
    kept = {key: session[key] for key in KEPT_ON_SIGN_IN if key in session}
    session.clear()
    session.update(kept)
    login_user(user, remember=remember)


def _remember_language(user: User) -> None:
    """Keep the language of this sign-in: the mail sent to the user later speaks it."""
    locale = get_locale()
    language = locale.language if locale is not None else None
    if language in LANGUAGES and user.locale != language:
        user.locale = language


LOGIN_BY_ADDRESS = Rule("LOGIN_LIMIT_PER_ADDRESS", throttle.by_address, failures_only=True)
LOGIN_BY_ACCOUNT = Rule("LOGIN_LIMIT_PER_ACCOUNT", throttle.by_account, failures_only=True)
LOGIN_BY_ACCOUNT_ADDRESS = Rule("LOGIN_LIMIT_PER_ACCOUNT_ADDRESS",
                                throttle.by_account_and_address, failures_only=True)


@bp.route("/login", methods=["GET", "POST"])
@throttled(LOGIN_BY_ACCOUNT_ADDRESS, LOGIN_BY_ACCOUNT, LOGIN_BY_ADDRESS)
def login():
    form = LoginForm()
    if request.method == "POST":
        user = None
        valid = form.validate_on_submit()
        if valid:
            user = check_credentials(form.email.data or "", form.password.data or "")
        if user is not None and user.is_suspended:
            logins.record_failure(user.id)
            flash(_("This account is suspended. Ask your administrator."), "error")
            return render_template("auth/login.html", form=form), 403
        if user is None and form.email.errors:
            form.password.data = ""
            return render_template("auth/login.html", form=form), 400
        if user is not None:
            logins.record_success(user.id)
            _remember_language(user)
            sign_in(user, remember=bool(form.remember.data))
            # prefs hook: remember the login name; land on `next`, else the start/last page.
            prefs.set_pref("login", user.email)
            return redirect(prefs.landing_path(safe_next(request.args.get("next")))
                            or url_for("tenant.index"))
        known = find_by_email(form.email.data) if valid else None
        if known is not None:
            logins.record_failure(known.id)
        form.password.data = ""
        flash(_("Unknown email or wrong password."), "error")
        return render_template("auth/login.html", form=form), 401
    if not form.email.data:  # prefs hook: pre-fill the login name
        form.email.data = prefs.current_prefs().get("login")
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    form = LogoutForm()
    if request.method == "GET":
        if not current_user.is_authenticated:
            return redirect(url_for("tenant.auth.login"))
        return render_template("auth/logout.html", form=form)
    if current_user.is_authenticated:
        end_sessions(current_user._get_current_object())
    logout_user()
    session.clear()  # an empty, modified session: Flask deletes the session cookie
    response = redirect(url_for("tenant.auth.login"))
    clear_remember_cookie(response)
    return response


RESET_BY_ADDRESS = Rule("RESET_LIMIT_PER_ADDRESS", throttle.by_address)
RESET_BY_ACCOUNT = Rule("RESET_LIMIT_PER_ACCOUNT", throttle.by_account)
RESET_BY_ACCOUNT_ADDRESS = Rule("RESET_LIMIT_PER_ACCOUNT_ADDRESS", throttle.by_account_and_address)
TOKEN_BY_ADDRESS = Rule("RESET_TOKEN_LIMIT_PER_ADDRESS", throttle.by_address)


@bp.route("/password/forgot", methods=["GET", "POST"])
@throttled(RESET_BY_ADDRESS)
def forgot_password():
    """An address is throttled (429); an account is not: past its limits its mail is silently
    not sent (the answer never changes), per address first, so a stranger asking repeatedly
    for someone's reset spends their own share, and per account, which bounds the mail."""
    form = ForgotForm()
    if form.validate_on_submit():
        if throttle.allowed(RESET_BY_ACCOUNT_ADDRESS) and throttle.allowed(RESET_BY_ACCOUNT):
            service.request_password_reset(form.email.data or "")
        flash(ngettext("If an account uses this address, a message with a link to choose a "
                       "new password is on its way. The link works once, for %(num)d minute.",
                       "If an account uses this address, a message with a link to choose a "
                       "new password is on its way. The link works once, for %(num)d minutes.",
                       service.reset_max_age() // 60), "info")
        return redirect(url_for("tenant.auth.login"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/forgot.html", form=form), status


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@throttled(TOKEN_BY_ADDRESS)
def reset_password(token: str):
    user = service.read_token(token)
    if user is None:
        response = current_app.make_response(
            (render_template("auth/reset_invalid.html"), 400))
    else:
        form = NewPasswordForm()
        if form.validate_on_submit():
            try:
                set_password(user, form.password.data or "")
            except UserError as exc:
                form.password.errors.append(str(exc))
            else:
                flash(_("Your password is set. Sign in with it."), "info")
                return redirect(url_for("tenant.auth.login"))
        status = 400 if request.method == "POST" else 200
        response = current_app.make_response(
            (render_template("auth/reset.html", form=form, user=user), status))
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    settings = app.extensions[config.EXTENSION]
    app.config.setdefault("REMEMBER_COOKIE_NAME", REMEMBER_COOKIE)
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("REMEMBER_COOKIE_SECURE", settings.https)
    app.config.setdefault("REMEMBER_COOKIE_DURATION", timedelta(days=settings.remember_days))
    login_manager.init_app(app)
    throttle.init_app(app)
