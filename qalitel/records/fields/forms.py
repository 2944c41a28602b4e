"""Forms of the lists page and of the structured cause analysis."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from core.forms import SafeForm
from qalitel.records.field_labels import CATALOG_KIND_LABELS, CAUSE_LABELS, FIELD_LABELS
from qalitel.records.field_models import (
    BRANCH_MAX,
    CATALOG_KINDS,
    CATALOG_NAME_MAX,
    CAUSE_CATEGORIES,
    ISHIKAWA_FIELDS,
    STEP_MAX,
    WHY_FIELDS,
)
from qalitel.records.forms import INVALID_CHOICE, options


def _name_field() -> StringField:
    return StringField(_l("Name"), validators=[
        DataRequired(_l("The name is required.")),
        Length(max=CATALOG_NAME_MAX,
               message=_l("The name is too long: at most 100 characters."))])


class CatalogEntryForm(SafeForm):
    kind = SelectField(_l("List"), choices=options((k, CATALOG_KIND_LABELS[k])
                                                   for k in CATALOG_KINDS),
                       invalid_choice_message=INVALID_CHOICE,
                       invalid_value_message=INVALID_CHOICE)
    name = _name_field()


class CatalogRenameForm(SafeForm):
    name = _name_field()


class AnalysisForm(SafeForm):
    main_cause = SelectField(
        FIELD_LABELS["main_cause"],
        choices=options([("", _l("(not set)"))]
                        + [(c, CAUSE_LABELS[c]) for c in CAUSE_CATEGORIES]),
        invalid_choice_message=INVALID_CHOICE, invalid_value_message=INVALID_CHOICE)
    version = HiddenField()


for _name in WHY_FIELDS:
    setattr(AnalysisForm, _name, TextAreaField(FIELD_LABELS[_name], validators=[
        Length(max=STEP_MAX, message=_l("Too long: at most %(max)d characters.",
                                        max=STEP_MAX))]))
for _name in ISHIKAWA_FIELDS:
    setattr(AnalysisForm, _name, TextAreaField(FIELD_LABELS[_name], validators=[
        Length(max=BRANCH_MAX, message=_l("Too long: at most %(max)d characters.",
                                          max=BRANCH_MAX))]))
