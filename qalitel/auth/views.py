"""Sign-in and sign-out at a tenant. A session is a login only at the tenant that issued it."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_login import LoginManager, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from qalitel.users.models import User
from qalitel.users.service import authenticate
from tenants.context import current_tenant, has_tenant, tdb

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.session_protection = "basic"


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    remember = BooleanField("Keep me signed in on this device", default=False)


def login_id(user: User) -> str:
    """Flask-Login id: tenant, user and session token. Changing the token ends sessions."""
    return f"{current_tenant().uid}:{user.id}:{user.session_token}"


@login_manager.user_loader
def load_user(identifier: str) -> User | None:
    if not has_tenant() or not isinstance(identifier, str):
        return None
    parts = identifier.split(":")
    if len(parts) != 3 or parts[0] != current_tenant().uid or not parts[1].isdigit():
        return None
    user = tdb.execute(select(User).where(User.id == int(parts[1]))).scalar_one_or_none()
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
    if not target or len(target) > 2048:
        return None
    parts = urlsplit(target)
    prefix = f"/t/{current_tenant().slug}/"
    if parts.scheme or parts.netloc or not target.startswith(prefix) or "\\" in target:
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.email.data or "", form.password.data or "")
        if user is not None:
            login_user(user, remember=bool(form.remember.data))
            return redirect(safe_next(request.args.get("next")) or url_for("tenant.index"))
        flash("Unknown email or wrong password, or account suspended.", "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    logout_user()
    return redirect(url_for("tenant.auth.login"))


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.config.setdefault("REMEMBER_COOKIE_NAME", "qalitel_remember")
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    settings = app.extensions["qalitel_settings"]
    app.config.setdefault("REMEMBER_COOKIE_SECURE", settings.https)
    from datetime import timedelta

    app.config.setdefault("REMEMBER_COOKIE_DURATION", timedelta(days=settings.remember_days))
