"""The two notification forms: the tenant's (client admin) and each user's own."""

from __future__ import annotations

from typing import Any

from babel.dates import get_day_names
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, IntegerField, SelectField
from wtforms.validators import InputRequired, NumberRange, Optional

from core.forms import SafeForm
from qalitel.notifications.models import DUE_SOON_MAX, Kind

KIND_LABELS = {
    Kind.ASSIGNMENT: _l("When an action or a non-conformity is assigned to me"),
    Kind.DUE_SOON: _l("Before an action's due date"),
    Kind.OVERDUE: _l("When an action is overdue"),
    Kind.DIGEST: _l("A weekly digest"),
}
TENANT_KIND_LABELS = {
    Kind.ASSIGNMENT: _l("On assignment"),
    Kind.DUE_SOON: _l("Before an action's due date"),
    Kind.OVERDUE: _l("When an action is overdue"),
    Kind.DIGEST: _l("Weekly digest"),
}
DAYS = NumberRange(1, DUE_SOON_MAX, message=_l("Between %(min)s and %(max)s days."))


def weekday_choices() -> list[tuple[int, str]]:
    names = get_day_names("wide", locale=get_locale() or "fr")
    return [(day, str(names[day]).capitalize()) for day in range(7)]


class TenantSettingsForm(SafeForm):
    due_soon_days = IntegerField(_l("Days before a due date"), validators=[InputRequired(),
                                                                            DAYS])
    digest_weekday = SelectField(_l("Day of the weekly digest"), coerce=int)
    assignment = BooleanField(TENANT_KIND_LABELS[Kind.ASSIGNMENT])
    due_soon = BooleanField(TENANT_KIND_LABELS[Kind.DUE_SOON])
    overdue = BooleanField(TENANT_KIND_LABELS[Kind.OVERDUE])
    digest = BooleanField(TENANT_KIND_LABELS[Kind.DIGEST])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.digest_weekday.choices = weekday_choices()


class UserPreferenceForm(SafeForm):
    assignment = BooleanField(KIND_LABELS[Kind.ASSIGNMENT])
    due_soon = BooleanField(KIND_LABELS[Kind.DUE_SOON])
    overdue = BooleanField(KIND_LABELS[Kind.OVERDUE])
    digest = BooleanField(KIND_LABELS[Kind.DIGEST])
    due_soon_days = IntegerField(_l("Days before a due date (empty: the company's setting)"),
                                 validators=[Optional(), DAYS])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "notify")
        super().__init__(*args, **kwargs)

