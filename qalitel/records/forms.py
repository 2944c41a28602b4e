"""Forms of the records module (Flask-WTF: every POST carries a CSRF token) and the labels
shown for stored codes."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from core.forms import SafeForm
from qalitel.records import field_labels
from qalitel.records.field_models import LOT_MAX, UNIT_MAX, plain_number
from qalitel.records.models import (
    ACTION_KINDS,
    ACTION_STATUSES,
    COMMENT_MAX,
    FOLDER_NAME_MAX,
    ORIGINS,
    SEVERITIES,
    STATUSES,
    TEXT_MAX,
    TITLE_MAX,
    WORKFLOW_ROLES,
)

STATUS_LABELS = {"open": _l("Open"), "analysis": _l("Analysis"), "treatment": _l("Treatment"),
                 "verification": _l("Verification"), "closed": _l("Closed"),
                 "unfounded": _l("Unfounded")}
ROLE_LABELS = {"assignee": _l("The record's assignee"), "manager": _l("Managers and admins")}
ORIGIN_LABELS = {"internal": _l("Internal"), "customer": _l("Customer"),
                 "supplier": _l("Supplier"), "audit": _l("Audit")}
SEVERITY_LABELS = {"minor": _l("Minor"), "major": _l("Major"), "critical": _l("Critical")}
KIND_LABELS = {"immediate": _l("Immediate"), "corrective": _l("Corrective"),
               "preventive": _l("Preventive")}
ACTION_STATUS_LABELS = {"planned": _l("Planned"), "in_progress": _l("In progress"),
                        "done": _l("Done"), "cancelled": _l("Cancelled")}
CHECK_LABELS = {"effective": _l("Effective"), "not_effective": _l("Not effective"),
                "pending": _l("Pending")}
FIELD_LABELS = {"title": _l("Title"), "description": _l("Description"),
                "cause_analysis": _l("Cause analysis"), "detected_on": _l("Detection date"),
                "detected_by": _l("Detected by"), "origin": _l("Origin"),
                "severity": _l("Severity"), "folder": _l("Folder"), "assignee": _l("Assignee"),
                "status": _l("Status"), "shared_with": _l("Shared with"), "file": _l("File"),
                "justification": _l("Justification"), "effectiveness": _l("Effectiveness")}

FIELD_LABELS.update(field_labels.FIELD_LABELS)

LABELS = {"status": STATUS_LABELS, "origin": ORIGIN_LABELS, "severity": SEVERITY_LABELS,
          "kind": KIND_LABELS, "action_status": ACTION_STATUS_LABELS, "field": FIELD_LABELS,
          "check": CHECK_LABELS,
          "main_cause": field_labels.CAUSE_LABELS,
          "catalog_kind": field_labels.CATALOG_KIND_LABELS}

INVALID_CHOICE = _l("Not a valid choice.")
INVALID_DATE = _l("Not a valid date (expected YYYY-MM-DD).")


def options(pairs: Iterable[tuple[Any, Any]]) -> list[SelectChoice]:
    """Select options (WTForms >= 3.3 declares them with SelectChoice)."""
    return [SelectChoice(str(v), label) for v, label in pairs]


def _select(label, values: tuple[str, ...], names: dict[str, Any], **kw: Any) -> SelectField:
    return SelectField(label, choices=options((v, names[v]) for v in values),
                       invalid_choice_message=INVALID_CHOICE,
                       invalid_value_message=INVALID_CHOICE, **kw)


NONE = "0"
"""The value of the "(nobody)" / "(no folder)" option of an id select."""


def optional_id(value: Any) -> int | None:
    """Coerce of id selects: the empty option is None, anything else must be an integer
    (which the choices then allow or refuse)."""
    if value is None or value == NONE:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value)
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise ValueError("not an id")
    return int(text)


def _id_select(label, name: str | None = None, **kw: Any) -> SelectField:
    """A select of ids (users, folders). On record and action forms the attribute is named
    like the model's column (``folder_id``), so a form built from the object shows the stored
    value, while ``name`` keeps the short HTML name (``folder``). Choices are set by the view;
    :data:`NONE` means none."""
    return SelectField(label, name=name, coerce=optional_id, choices=[],
                       invalid_choice_message=INVALID_CHOICE,
                       invalid_value_message=INVALID_CHOICE, **kw)


def _too_long(limit: int):
    return _l("Too long: at most %(max)d characters.", max=limit)


class DecimalText(StringField):
    """A number typed as text (``12,5`` or ``12.5``), checked by the service; a stored
    decimal is shown plainly (``12.5``, ``1234.50`` with ``places=2``)."""

    def __init__(self, label=None, validators=None, places: int | None = None, **kw: Any):
        super().__init__(label, validators, **kw)
        self.places = places

    def _value(self) -> str:
        if isinstance(self.data, Decimal):
            return plain_number(self.data, self.places)
        return super()._value()


class RecordForm(SafeForm):
    title = StringField(_l("Title"), validators=[
        DataRequired(_l("The title is required.")),
        Length(max=TITLE_MAX, message=_l("The title is too long: at most 200 characters."))])
    description = TextAreaField(_l("Description"), validators=[
        Length(max=TEXT_MAX,
               message=_l("The description is too long: at most 20000 characters."))])
    detected_on = DateField(_l("Detection date"),
                            validators=[InputRequired(_l("The detection date is required."))],
                            invalid_value_message=INVALID_DATE)
    detected_by_id = _id_select(_l("Detected by"), "detected_by")
    origin = _select(_l("Origin"), ORIGINS, ORIGIN_LABELS, default="internal")
    severity = _select(_l("Severity"), SEVERITIES, SEVERITY_LABELS, default="minor")
    folder_id = _id_select(_l("Folder"), "folder")
    assignee_id = _id_select(_l("Assignee"), "assignee")
    cause_analysis = TextAreaField(_l("Cause analysis"), validators=[
        Length(max=TEXT_MAX,
               message=_l("The cause analysis is too long: at most 20000 characters."))])
    # -- record fields (qalitel.records.fields)
    product_id = _id_select(_l("Product or process"), "product")
    lot = StringField(_l("Lot"), validators=[Length(max=LOT_MAX, message=_too_long(LOT_MAX))])
    quantity = DecimalText(_l("Quantity"))
    quantity_unit = StringField(_l("Unit"), validators=[
        Length(max=UNIT_MAX, message=_too_long(UNIT_MAX))])
    partner_id = _id_select(_l("Customer or supplier"), "partner")
    immediate_action = TextAreaField(_l("Immediate action"), validators=[
        Length(max=TEXT_MAX, message=_too_long(TEXT_MAX))])
    nq_cost = DecimalText(_l("Cost of non-quality (€)"), places=2)
    # -- end of record fields
    version = HiddenField()


class StatusForm(SafeForm):
    to_status = _select(_l("New status"), STATUSES, STATUS_LABELS)
    comment = TextAreaField(_l("Comment"), validators=[
        Length(max=COMMENT_MAX, message=_l("The comment is too long: at most 2000 characters."))])
    justification = TextAreaField(_l("Justification"), validators=[
        Length(max=COMMENT_MAX,
               message=_l("The justification is too long: at most 2000 characters."))])


class ReopenForm(SafeForm):
    reason = TextAreaField(_l("Reason for reopening"), validators=[
        DataRequired(_l("Say why this record is reopened: the reason is required.")),
        Length(max=COMMENT_MAX, message=_l("The reason is too long: at most 2000 characters."))])


class ShareForm(SafeForm):
    user = _id_select(_l("Share with"))


class ActionForm(SafeForm):
    title = StringField(_l("Title"), validators=[
        DataRequired(_l("The title is required.")),
        Length(max=TITLE_MAX, message=_l("The title is too long: at most 200 characters."))])
    description = TextAreaField(_l("Description"), validators=[
        Length(max=TEXT_MAX,
               message=_l("The description is too long: at most 20000 characters."))])
    kind = _select(_l("Type"), ACTION_KINDS, KIND_LABELS, default="corrective")
    owner_id = _id_select(_l("Owner"), "owner")
    due_date = DateField(_l("Due date"), validators=[Optional()],
                         invalid_value_message=INVALID_DATE)
    status = _select(_l("Status"), ACTION_STATUSES, ACTION_STATUS_LABELS, default="planned")
    effectiveness_due_on = DateField(_l("Effectiveness check planned on"),
                                     validators=[Optional()], invalid_value_message=INVALID_DATE)
    effectiveness_criteria = TextAreaField(_l("Effectiveness criteria"), validators=[
        Length(max=COMMENT_MAX,
               message=_l("The criteria are too long: at most 2000 characters."))])
    version = HiddenField()


class EffectivenessForm(SafeForm):
    effective = RadioField(_l("Was the action effective?"),
                           choices=options([("yes", _l("Yes")), ("no", _l("No"))]),
                           validators=[InputRequired(_l("Answer yes or no."))],
                           invalid_choice_message=INVALID_CHOICE)
    comment = TextAreaField(_l("Comment"), validators=[
        Length(max=COMMENT_MAX, message=_l("The comment is too long: at most 2000 characters."))])


class FolderForm(SafeForm):
    name = StringField(_l("Name"), validators=[
        DataRequired(_l("The name is required.")),
        Length(max=FOLDER_NAME_MAX, message=_l("The name is too long: at most 100 characters."))])
    confidential = BooleanField(_l("Confidential (only cleared managers see its records)"))


class ClearanceForm(SafeForm):
    user = _id_select(_l("Manager"))
    group = _id_select(_l("Group"))


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _roles(label) -> CheckboxesField:
    return CheckboxesField(label, choices=options((r, ROLE_LABELS[r]) for r in WORKFLOW_ROLES),
                           invalid_choice_message=INVALID_CHOICE,
                           invalid_value_message=INVALID_CHOICE)


class WorkflowRulesForm(SafeForm):
    """Who may make each move: one set of checkboxes per :data:`WORKFLOW_STEPS` entry."""

    analysis = _roles(_l("Move to analysis"))
    treatment = _roles(_l("Move to treatment (or back to it from verification)"))
    verification = _roles(_l("Move to verification"))
    closed = _roles(_l("Close"))
    unfounded = _roles(_l("Declare unfounded"))
    reopen = _roles(_l("Reopen a closed or unfounded record"))


class ConfirmForm(SafeForm):
    """Only the CSRF token (revocations, removals)."""
