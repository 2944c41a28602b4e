"""User and group administration (client admins) and each user's own profile page.

Admin pages live under ``/t/<slug>/users/``; the profile page at ``/t/<slug>/profile``.
Ids in URLs are looked up in the current tenant's database only, so an id from another
tenant is a 404 like any unknown id.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from wtforms import EmailField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from core import validation
from core.forms import Checked, SafeForm
from qalitel.auth import service as auth_service
from qalitel.auth import throttle
from qalitel.auth.throttle import Rule, throttled
from qalitel.auth.views import has_remember_cookie, sign_in
from qalitel.users import service
from qalitel.users.labels import PROFILE_LABELS
from qalitel.users.models import Group, Profile, User
from qalitel.users.service import (
    EMAIL_MAX,
    GROUP_NAME_MAX,
    PASSWORD_MAX,
    UserError,
    WrongPasswordError,
)
from tenants.context import tdb

bp = Blueprint("users", __name__, url_prefix="/users")
account = Blueprint("account", __name__)



def profile_choices() -> list[tuple[str, Any]]:
    return [(p.value, PROFILE_LABELS[p]) for p in Profile]


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ActionForm(SafeForm):
    """CSRF only: suspend, reactivate, send a link, delete."""


class NewUserForm(SafeForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=EMAIL_MAX),
                                                Checked(validation.check_email)])
    name = StringField(_l("Name"), validators=[DataRequired(), Checked(validation.check_name)])
    profile = SelectField(_l("Profile"), default=Profile.USER.value)
    password = PasswordField(_l("Initial password (leave empty to email an invitation)"),
                             validators=[Optional(), Checked(validation.check_password)])
    groups = CheckboxesField(_l("Groups"), coerce=int)


class EditUserForm(SafeForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Checked(validation.check_name)])
    profile = SelectField(_l("Profile"))
    groups = CheckboxesField(_l("Groups"), coerce=int)


class GroupForm(SafeForm):
    name = StringField(_l("Group name"), validators=[DataRequired(), Length(max=GROUP_NAME_MAX)])


class MembersForm(SafeForm):
    name = StringField(_l("Group name"), validators=[DataRequired(), Length(max=GROUP_NAME_MAX)])
    members = CheckboxesField(_l("Members"), coerce=int)


class NameForm(SafeForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Checked(validation.check_name)])


class PasswordForm(SafeForm):
    current = PasswordField(_l("Current password"),
                            validators=[DataRequired(), Length(max=PASSWORD_MAX)])
    password = PasswordField(_l("New password"), validators=[
        DataRequired(), Checked(validation.check_password)])
    confirm = PasswordField(_l("Repeat the new password"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords differ."))])


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    @login_required
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if current_user.profile is not Profile.ADMIN:
            abort(403)
        return view(*args, **kwargs)

    return guarded


def _user_or_404(user_id: int) -> User:
    user = tdb.get(User, user_id) if validation.is_id(user_id) else None
    if user is None:
        abort(404)
    return user


def _group_or_404(group_id: int) -> Group:
    group = tdb.get(Group, group_id) if validation.is_id(group_id) else None
    if group is None:
        abort(404)
    return group


def _group_choices() -> list[tuple[int, str]]:
    return [(g.id, g.name) for g in service.list_groups()]


# ---------------------------------------------------------------- users (admin)


@bp.get("/")
@admin_required
def index():
    page = service.user_page(validation.id_or_none(request.args.get("page", "1")) or 1)
    return render_template("users/list.html", users=page.rows, page=page,
                           groups=service.groups_by_user(), labels=PROFILE_LABELS)


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create():
    form = NewUserForm()
    form.profile.choices = profile_choices()
    form.groups.choices = _group_choices()
    if form.validate_on_submit():
        try:
            user = service.create_user(form.email.data or "", form.name.data or "",
                                       form.password.data or None, Profile(form.profile.data))
        except UserError as exc:
            form.email.errors.append(str(exc))
        else:
            service.set_user_groups(user, form.groups.data or [])
            flash(_("User %(name)s created.", name=user.name), "info")
            if not form.password.data:
                auth_service.send_invitation(user)  # after the commit; its outcome is shown
            return redirect(url_for("tenant.users.edit", user_id=user.id))
    status = 400 if request.method == "POST" else 200
    return render_template("users/new.html", form=form), status


@bp.route("/<int:user_id>", methods=["GET", "POST"])
@admin_required
def edit(user_id: int):
    user = _user_or_404(user_id)
    form = EditUserForm(obj=user, groups=service.group_ids_of(user))
    form.profile.choices = profile_choices()
    form.groups.choices = _group_choices()
    status = 200
    if request.method == "POST" and user.is_tombstone:
        if not form.validate_on_submit() and "csrf_token" in form.errors:
            abort(400)
        return _refused_tombstone(user)
    if form.validate_on_submit():
        try:
            service.update_user(user, name=form.name.data or "", profile=form.profile.data or "")
            service.set_user_groups(user, form.groups.data or [])
        except UserError as exc:
            flash(str(exc), "error")
            status = 409
        else:
            flash(_("Changes saved."), "info")
            return redirect(url_for("tenant.users.edit", user_id=user.id))
    elif request.method == "POST":
        status = 400
    return _edit_page(user, form, status)


def _edit_page(user: User, form: EditUserForm, status: int):
    return render_template("users/edit.html", form=form, user=user, action=ActionForm(),
                           labels=PROFILE_LABELS), status


def _refused_tombstone(user: User):
    """An erased account's page, 409, with the reason: nothing about it can change."""
    try:
        service.refuse_tombstone(user)
    except UserError as exc:
        flash(str(exc), "error")
    form = EditUserForm(obj=user, groups=service.group_ids_of(user))
    form.profile.choices = profile_choices()
    form.groups.choices = _group_choices()
    return _edit_page(user, form, 409)


def _action(user_id: int, act: Callable[[User], Any], done: str | None):
    user = _user_or_404(user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    if user.is_tombstone:
        return _refused_tombstone(user)
    try:
        act(user)
    except UserError as exc:
        flash(str(exc), "error")
    else:
        if done:
            flash(done, "info")
    if not current_user.is_authenticated or current_user.is_suspended:
        return redirect(url_for("tenant.auth.login"))
    return redirect(url_for("tenant.users.edit", user_id=user.id))


@bp.post("/<int:user_id>/suspend")
@admin_required
def suspend(user_id: int):
    return _action(user_id, service.suspend, _("Account suspended; its sessions have ended."))


@bp.post("/<int:user_id>/reactivate")
@admin_required
def reactivate(user_id: int):
    return _action(user_id, service.reactivate, _("Account reactivated."))


@bp.post("/<int:user_id>/send-reset")
@admin_required
def send_reset(user_id: int):
    def send(user: User) -> None:
        if user.is_suspended:
            raise UserError(_("This account is suspended."))
        auth_service.send_reset_link(user)  # sent after the commit; its outcome is shown

    return _action(user_id, send, None)


# ---------------------------------------------------------------- groups (admin)


@bp.route("/groups/", methods=["GET", "POST"])
@admin_required
def groups():
    form = GroupForm()
    status = 200
    if form.validate_on_submit():
        try:
            group = service.create_group(form.name.data or "")
        except UserError as exc:
            form.name.errors.append(str(exc))
            status = 409
        else:
            flash(_("Group %(name)s created.", name=group.name), "info")
            return redirect(url_for("tenant.users.group", group_id=group.id))
    elif request.method == "POST":
        status = 400
    counts = {}
    for names in service.groups_by_user().values():
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    return render_template("users/groups.html", form=form, groups=service.list_groups(),
                           counts=counts), status


@bp.route("/groups/<int:group_id>", methods=["GET", "POST"])
@admin_required
def group(group_id: int):
    group = _group_or_404(group_id)
    form = MembersForm()
    form.members.choices = [(u.id, f"{u.name} <{u.email}>") for u in service.list_users()
                            if not u.is_tombstone]
    if request.method == "GET":
        form.name.data = group.name
        form.members.data = service.member_ids(group)
    status = 200
    if form.validate_on_submit():
        try:
            service.rename_group(group, form.name.data or "")
            service.set_group_members(group, form.members.data or [])
        except UserError as exc:
            form.name.errors.append(str(exc))
            status = 409
        else:
            flash(_("Changes saved."), "info")
            return redirect(url_for("tenant.users.group", group_id=group.id))
    elif request.method == "POST":
        status = 400
    return render_template("users/group.html", form=form, group=group,
                           action=ActionForm()), status


@bp.post("/groups/<int:group_id>/delete")
@admin_required
def delete_group(group_id: int):
    group = _group_or_404(group_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    name = group.name
    service.delete_group(group)
    flash(_("Group %(name)s deleted.", name=name), "info")
    return redirect(url_for("tenant.users.groups"))


# ---------------------------------------------------------------- own profile


def _profile_page(name_form: NameForm, password_form: PasswordForm, status: int = 200):
    return render_template("users/profile.html", name_form=name_form,
                           password_form=password_form, labels=PROFILE_LABELS,
                           groups=service.groups_by_user().get(current_user.id, [])), status


@account.get("/profile")
@login_required
def profile():
    return _profile_page(NameForm(data={"name": current_user.name}), PasswordForm())


@account.post("/profile/name")
@login_required
def profile_name():
    form = NameForm()
    if form.validate_on_submit():
        try:
            service.rename(current_user, form.name.data or "")
        except UserError as exc:
            form.name.errors.append(str(exc))
        else:
            flash(_("Your name is saved."), "info")
            return redirect(url_for("tenant.account.profile"))
    return _profile_page(form, PasswordForm(), 400)


PASSWORD_BY_USER = Rule("PASSWORD_LIMIT_PER_USER", throttle.by_user, failures_only=True)


@account.post("/profile/password")
@login_required
@throttled(PASSWORD_BY_USER)
def profile_password():
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            service.change_own_password(current_user, form.current.data or "",
                                        form.password.data or "")
        except WrongPasswordError as exc:
            form.current.errors.append(str(exc))
        except UserError as exc:
            form.password.errors.append(str(exc))
        else:
            user = current_user._get_current_object()
            sign_in(user, remember=has_remember_cookie())  # this session goes on, others end
            flash(_("Your password is changed; your other sessions have ended."), "info")
            return redirect(url_for("tenant.account.profile"))
    return _profile_page(NameForm(data={"name": current_user.name}), form, 400)
