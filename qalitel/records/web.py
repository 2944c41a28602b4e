"""The records blueprint and what its views share: rendering, list settings, choices."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from qalitel import prefs
from qalitel.records import queries, service, visibility
from qalitel.records.forms import LABELS, options
from qalitel.records.models import Action, NonConformity
from qalitel.users.models import User

bp = Blueprint("records", __name__)

MAX_ID = 2**31 - 1  # ids are 32-bit integers in both databases


def id_or_404(value: int) -> int:
    """An id from a URL, or 404 when no row can have it (larger ids overflow the driver)."""
    if not 0 < value <= MAX_ID:
        abort(404)
    return value


def me() -> User:
    """The signed-in user object (not the proxy), as the services expect."""
    return current_user._get_current_object()  # type: ignore[attr-defined]


def today() -> date:
    return service.today()


_LABELS_BY_LOCALE: dict[str, dict[str, dict[str, str]]] = {}
DATE_FORMATS = {"fr": "%d/%m/%Y"}


def locale_code() -> str:
    locale = get_locale()
    return locale.language if locale is not None else "fr"


def translated_labels() -> dict[str, dict[str, str]]:
    """The labels of stored codes, translated once per process and language (lists show
    hundreds of them; translating each on the fly costs more than the database)."""
    code = locale_code()
    labels = _LABELS_BY_LOCALE.get(code)
    if labels is None:
        labels = {kind: {key: str(text) for key, text in names.items()}
                  for kind, names in LABELS.items()}
        _LABELS_BY_LOCALE[code] = labels
    return labels


def short_date_formatter():
    """A cheap date formatter for table cells (ISO in English, dd/mm/yyyy in French)."""
    pattern = DATE_FORMATS.get(locale_code(), "%Y-%m-%d")
    return lambda value: value.strftime(pattern) if value else ""


def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    user = me()
    context.setdefault("labels", translated_labels())
    context.setdefault("short_date", short_date_formatter())
    context.setdefault("is_manager", visibility.is_manager(user))
    context.setdefault("can_manage_folders", visibility.can_manage_folders(user))
    context.setdefault("today", today())
    return render_template(template, **context), status


def remember_page() -> None:
    """Remember this page so the next sign-in can open it again."""
    prefs.set_pref("last", request.full_path.rstrip("?"))


def list_spec(name: str) -> queries.ListSpec:
    """The list's settings: from the query string, saved to the preference cookie; or, when
    the list is opened without parameters, restored from the cookie."""
    if request.args:
        spec = queries.parse_spec(name, request.args)
        prefs.save_list_prefs(name, spec.filters, spec.sort, spec.page_size)
        return spec
    saved = prefs.list_prefs(name)
    args: dict[str, Any] = dict(saved.get("filters") or {})
    args["sort"] = saved.get("sort")
    args["per_page"] = saved.get("page_size")
    return queries.parse_spec(name, args)


def record_or_404(record_id: int) -> NonConformity:
    record = queries.visible_record(me(), id_or_404(record_id))
    if record is None:
        abort(404)
    return record


def action_or_404(action_id: int) -> Action:
    action = queries.visible_action(me(), id_or_404(action_id))
    if action is None:
        abort(404)
    return action


def user_options(none_label: str | None = None, exclude: set[int] | None = None) -> list[Any]:
    pairs: list[tuple[Any, Any]] = [(0, none_label)] if none_label is not None else []
    pairs += [(u.id, u.name) for u in service.assignable_users()
              if not exclude or u.id not in exclude]
    return options(pairs)


def folder_options(user: User, keep: Any = None) -> list[Any]:
    """Folders ``user`` may file in, plus ``keep`` (the record's current folder)."""
    folders: list[Any] = service.folder_choices(user)
    if keep is not None and keep.id not in {f.id for f in folders}:
        folders.append(keep)
    return options([(0, _("(no folder)"))] + [(f.id, f.name) for f in folders])


def csv_response(filename: str, header: list[str], rows) -> Response:
    body = "\ufeff" + queries.to_csv(header, rows)
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def form_errors(form) -> list[str]:
    return [f"{form[name].label.text}: {message}" for name, messages in form.errors.items()
            if name != "csrf_token" for message in messages]


@bp.errorhandler(service.PermissionDenied)
def _permission_denied(_error):
    """Safety net: a service refused a change a view let through."""
    return render_template("errors/403.html"), 403
