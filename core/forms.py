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
        if field.data in (None, "") or _unchanged(form, field):
            return
        try:
            cleaned = self.rule(field.data)
        except validation.InvalidInput as exc:
            raise StopValidation(str(exc)) from exc
        if self.store:
            field.data = cleaned


def _unchanged(form: Any, field: Field) -> bool:
    """The field holds the value already stored in the object the form was built from: an
    edit is never refused for a field the person did not touch."""
    stored = getattr(form, "_stored", None)
    if stored is None:
        return False
    attribute = next((key for key, candidate in form._fields.items() if candidate is field),
                     field.name)
    value = getattr(stored, attribute, None)
    if isinstance(value, str) and isinstance(field.data, str):
        return _lines(value) == _lines(field.data)
    return value is not None and value == field.data


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


class SafeForm(FlaskForm):
    """A form whose text fields never carry NUL or other control characters (line breaks
    are allowed in text areas): such input is a field error (4xx), never a database error.
    Built with ``obj=``, it lets values equal to the object's pass the :class:`Checked`
    rules, so an edit never fails on a field left alone."""

    def __init__(self, *args: Any, obj: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, obj=obj, **kwargs)
        self._stored = obj

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        for field in self:
            data = field.data
            if (not isinstance(data, str) or isinstance(field, PasswordField)
                    or _unchanged(self, field)):
                continue
            if validation.has_forbidden_characters(data,
                                                   multiline=isinstance(field, TextAreaField)):
                field.errors = [*field.errors, str(FORBIDDEN)]
                ok = False
        return ok
