"""WTForms glue for :mod:`core.validation`: a base form that refuses control characters in
every text field, and a validator running one of the ``check_*`` rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, PasswordField, TextAreaField
from wtforms.validators import StopValidation

from core import validation

FORBIDDEN = _l("This field contains a forbidden character.")


class Checked:
    """A WTForms validator applying ``rule`` (e.g. ``validation.check_email``) to the data;
    with ``store``, the cleaned value replaces the field's data."""

    def __init__(self, rule: Callable[[Any], Any], *, store: bool = False) -> None:
        self.rule = rule
        self.store = store

    def __call__(self, form: Any, field: Field) -> None:
        if field.data in (None, ""):
            return
        try:
            cleaned = self.rule(field.data)
        except validation.InvalidInput as exc:
            raise StopValidation(str(exc)) from exc
        if self.store:
            field.data = cleaned


class SafeForm(FlaskForm):
    """A form whose text fields never carry NUL or other control characters (line breaks
    are allowed in text areas): such input is a field error (4xx), never a database error."""

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        for field in self:
            data = field.data
            if not isinstance(data, str) or isinstance(field, PasswordField):
                continue
            if validation.has_forbidden_characters(data,
                                                   multiline=isinstance(field, TextAreaField)):
                field.errors = [*field.errors, str(FORBIDDEN)]
                ok = False
        return ok
