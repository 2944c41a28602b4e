"""Non-conformity records: list, detail, creation."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from qalitel.records.models import NonConformity
from qalitel.records.service import create_nonconformity
from tenants.context import tdb

bp = Blueprint("records", __name__, url_prefix="/records")


class RecordForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    description = TextAreaField("Description", validators=[Length(max=20000)])


def dashboard():
    counts = dict(tdb.execute(
        select(NonConformity.status, func.count()).group_by(NonConformity.status)).all())
    return render_template("records/dashboard.html", counts=counts)


@bp.get("/")
@login_required
def index():
    records = tdb.execute(select(NonConformity).order_by(NonConformity.number.desc())
                          .limit(100)).scalars().all()
    return render_template("records/list.html", records=records)


@bp.route("/new", methods=["GET", "POST"])
@login_required
def create():
    form = RecordForm()
    if form.validate_on_submit():
        record = create_nonconformity(current_user, form.title.data or "",
                                      form.description.data or "")
        return redirect(url_for("tenant.records.show", record_id=record.id))
    return render_template("records/form.html", form=form)


@bp.get("/<int:record_id>")
@login_required
def show(record_id: int):
    record = tdb.get(NonConformity, record_id)
    if record is None:
        abort(404)
    return render_template("records/show.html", record=record)
