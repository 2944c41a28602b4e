"""The records blueprint and what its views share: rendering, list settings, choices."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import Row
from werkzeug.datastructures import iter_multi_items

from core import dates, validation
from qalitel import prefs
from qalitel.pseudonyms import translate_pseudonyms
from qalitel.records import queries, service, specs, visibility
from qalitel.records.forms import LABELS, NONE, options
from qalitel.records.models import Action, Folder, NonConformity
from qalitel.users.models import User
from tenants.context import tdb

bp = Blueprint("records", __name__)


def id_or_404(value: int) -> int:
    """An id from a URL, or 404 when no row can have it (larger ids overflow the driver)."""
    if not validation.is_id(value):
        abort(404)
    return value


def me() -> User:
    """The signed-in user object (not the proxy), as the services expect."""
    return current_user._get_current_object()  # type: ignore[attr-defined]


def today() -> date:
    return service.today()


_LABELS_BY_LOCALE: dict[str, dict[str, dict[str, str]]] = {}


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


def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    user = me()
    context.setdefault("labels", translated_labels())
    context.setdefault("short_date", dates.date_text)
    context.setdefault("is_manager", visibility.is_manager(user))
    context.setdefault("can_manage_folders", visibility.can_manage_folders(user))
    context.setdefault("today", today())
    return render_template(template, **context), status


_OPTION = Markup('<option value="{}"{}>{}</option>')
_SELECTED = Markup(" selected")


@bp.app_template_global("select_options")
def select_options(choices: Any, chosen: Any) -> Markup:
    """The ``<option>`` elements of a list filter, ``chosen`` (a value from the query string)
    selected: built in one call, not one template loop step per option (a filter lists every
    user and folder). Values and texts are escaped; pseudonyms are shown in the reader's
    language, as every template value is."""
    wanted = chosen if isinstance(chosen, str) else None
    return Markup("").join(
        _OPTION.format(value, _SELECTED if wanted is not None and wanted == str(value) else "",
                       translate_pseudonyms(text))
        for value, text in choices)


_QUERY_SAFE = "!$'()*,/:;?@"  # what Werkzeug's URL builder leaves unquoted (werkzeug.urls)


@bp.app_template_global("list_url")
def list_url(base: str, args: Mapping[str, Any]) -> str:
    """``url_for(endpoint, **args)`` of a list, given ``base = url_for(endpoint)``: the links of
    a list (sort headers, pager, reset) differ only by their query string, built as Werkzeug
    builds it (arguments in order, None left out, its quoting) without a URL build each."""
    query = urlencode([item for item in iter_multi_items(args) if item[1] is not None],
                      safe=_QUERY_SAFE)
    return f"{base}?{query}" if query else base


_HEADER = Markup('<th scope="col"{}>\n    <a href="{}">{}{}</a>\n  </th>')
_ARIA_SORT = Markup(' aria-sort="{}"')


@bp.app_template_global("sort_headers")
def sort_headers(spec: specs.ListSpec, base: str, columns: Mapping[str, str],
                 keys: Iterable[str] | None = None) -> Markup:
    """The ``<th>`` of each sortable column (``keys``, default all of ``columns``: key ->
    title), linking to the list sorted by it (again: the other way), the sorted one marked."""
    cells = []
    for key in columns if keys is None else keys:
        active = spec.sort_key == key
        cells.append(_HEADER.format(
            _ARIA_SORT.format("descending" if spec.descending else "ascending") if active else "",
            list_url(base, spec.sort_args(key)), translate_pseudonyms(columns[key]),
            (" ↓" if spec.descending else " ↑") if active else ""))
    return Markup("\n    ").join(cells)


def remember_page() -> None:
    """Remember this page so the next sign-in can open it again."""
    prefs.set_pref("last", request.full_path.rstrip("?"))


def list_spec(name: str) -> specs.ListSpec:
    """The list's settings: from the query string, saved to the preference cookie; or, when
    the list is opened without parameters, restored from the cookie."""
    if request.args:
        spec = specs.parse_spec(name, request.args)
        prefs.save_list_prefs(name, spec.filters, spec.sort, spec.page_size)
        return spec
    saved = prefs.list_prefs(name)
    args: dict[str, Any] = dict(saved.get("filters") or {})
    args["sort"] = saved.get("sort")
    args["per_page"] = saved.get("page_size")
    return specs.parse_spec(name, args)


def record_or_404(record_id: int, *, shown: bool = False) -> NonConformity:
    """``shown``: for the record's page (see :func:`queries.visible_record`)."""
    record = queries.visible_record(me(), id_or_404(record_id), shown=shown)
    if record is None:
        abort(404)
    return record


def action_or_404(action_id: int) -> Action:
    action = queries.visible_action(me(), id_or_404(action_id))
    if action is None:
        abort(404)
    return action


def user_options(none_label: str | None = None, exclude: set[int] | None = None,
                 keep: int | None = None) -> list[Any]:
    """Active users to pick from; plus ``keep``, the value stored, even when that user is
    suspended now (so an edit that leaves the field alone keeps it)."""
    pairs: list[tuple[Any, Any]] = [(NONE, none_label)] if none_label is not None else []
    active = [(u.id, u.name) for u in service.assignable_users()
              if not exclude or u.id not in exclude]
    if keep is not None and keep not in {uid for uid, _name in active}:
        kept = tdb.get(User, keep)
        if kept is not None:
            pairs.append((kept.id, _("%(name)s (suspended)", name=kept.name)))
    return options(pairs + active)


def folder_label(folder: Folder | Row) -> str:
    """A folder's name in choices, marked when confidential: names are unique only among the
    folders one person sees, so a cleared person may see a plain and a confidential folder of
    the same name."""
    return _("%(name)s (confidential)", name=folder.name) if folder.confidential else folder.name


def folder_options(user: User, keep: int | None = None) -> list[Any]:
    """Folders ``user`` may file in, plus ``keep`` (the record's current folder). When
    ``user`` is not cleared for ``keep``, it is the only option, under a neutral label: the
    record stays where it is and its folder's name is not shown."""
    if keep is not None and not visibility.can_see_folder(user, keep):
        return options([(keep, visibility.hidden_folder_label())])
    pairs: list[tuple[Any, Any]] = [(NONE, _("(no folder)"))]
    pairs += [(f.id, folder_label(f)) for f in service.usable_folders(user)]
    if keep is not None and keep not in {f[0] for f in pairs}:
        kept = tdb.get(Folder, keep)
        if kept is not None:
            pairs.append((kept.id, folder_label(kept)))
    return options(pairs)


def form_errors(form) -> list[str]:
    return [_("%(field)s: %(message)s", field=form[name].label.text, message=message)
            for name, messages in form.errors.items()
            if name != "csrf_token" for message in messages]


@bp.errorhandler(service.PermissionDenied)
def _permission_denied(error: service.PermissionDenied):
    """A change refused for who asks, with what the rule says when it says something."""
    return render("records/refused.html", 403, title=_("Not allowed"),
                  message=str(error) or _("You may not do this."),
                  record_id=(request.view_args or {}).get("record_id"))


@bp.errorhandler(service.RecordLocked)
def _locked(error: service.RecordLocked):
    """A change to a closed or unfounded record (or one of its actions): 423, nothing
    saved."""
    return render("records/refused.html", 423, title=_("Read-only record"),
                  message=str(error), record_id=error.record_id)
