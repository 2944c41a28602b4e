"""What a report shows of a non-conformity, as its reader may see it, in the reader's
language: plain values built here, laid out by ``templates/reports/``.

Every part is built in one function. The facts of a record are a list of (label, value) rows
(:func:`record_facts`): a new field of a record is one line there, and it then shows in the
record PDF and in the 8D report's D2. The 8D sections (:func:`eight_d`) are built from the
same parts. The record and its actions come through the visibility rules of
:mod:`qalitel.records.visibility`; a confidential folder's name shows only to the cleared;
erased people's pseudonyms are translated when the templates print them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from flask_babel import format_currency, format_decimal, ngettext
from flask_babel import gettext as _
from sqlalchemy import func, select

from core import dates
from qalitel.records import visibility
from qalitel.records.field_labels import CATALOG_KIND_LABELS, CAUSE_LABELS, field_label
from qalitel.records.field_models import (
    COST_CURRENCY,
    ISHIKAWA_FIELDS,
    WHY_FIELDS,
    CatalogEntry,
    RecordAnalysis,
)
from qalitel.records.models import Action, NonConformity, StatusChange
from qalitel.records.queries import check_result
from qalitel.records.views import _history as visible_history
from qalitel.records.web import folder_label, translated_labels
from qalitel.users.models import User
from tenants.context import tdb

NONE = "—"
HISTORY_VALUE_MAX = 300
# What one report lays out at most, so that a record of any size renders in bounded time
# (the rest is on the record's page and in the CSV exports; the report says what it left out).
ACTIONS_MAX = 60
STEPS_MAX = 60
HISTORY_MAX = 150
TEXT_SHOWN_MAX = 5000
CELL_MAX = 800
WORD_MAX = 40
LONG_WORD = re.compile(rf"(\S{{{WORD_MAX}}})(?=\S)")
CODED_FIELDS = ("status", "origin", "severity")

Rows = list[tuple[str, str]]


def day(value: date | None) -> str:
    return dates.date_text(value) if value else NONE


def moment(value: datetime | None) -> str:
    """A date and time in the reader's locale and time zone, as on the pages."""
    return dates.datetime_text(value) if value else NONE


def label(kind: str, code: str) -> str:
    """The translated label of a stored code (the code itself for one not listed yet)."""
    return str(translated_labels()[kind].get(code, code))


def cut(text: str | None, limit: int | None = None) -> str:
    """A free text as a report shows it: at most ``limit`` (default
    :data:`TEXT_SHOWN_MAX`) characters, a line-break opportunity (a zero-width space) inside
    every run of :data:`WORD_MAX` characters without one, so that laying it out stays linear."""
    if not text:
        return NONE
    limit = limit or TEXT_SHOWN_MAX
    shown = text if len(text) <= limit else text[:limit - 1] + "…"
    return LONG_WORD.sub("\\1\u200b", shown)


def name(person: User | None) -> str:
    return person.name if person is not None else NONE


@dataclass(frozen=True)
class ActionLine:
    title: str
    kind: str
    owner: str
    due: str
    status: str
    done_on: str
    result: str
    checked: str
    comment: str
    planned: str
    criteria: str


@dataclass(frozen=True)
class Step:
    status: str
    who: str
    when: str
    comment: str
    justification: str


@dataclass(frozen=True)
class Change:
    when: str
    who: str
    field: str
    before: str
    after: str


@dataclass(frozen=True)
class Section:
    """One section of the 8D report; the template shows the parts it has (``None``: a part
    the section has not; an empty list: a part with nothing in it yet)."""

    code: str
    title: str
    rows: Rows = field(default_factory=list)
    texts: Rows = field(default_factory=list)
    analysis: Rows = field(default_factory=list)
    actions: list[ActionLine] | None = None
    verification: bool = False
    steps: list[Step] | None = None


@dataclass(frozen=True)
class Report:
    tenant_name: str
    logo_url: str | None
    reference: str
    title: str
    generated: str
    facts: Rows
    texts: Rows
    analysis: Rows
    actions: list[ActionLine]
    steps: list[Step]
    history: list[Change]
    team: Rows
    kinds: dict[str, list[ActionLine]]
    omitted: list[str] = field(default_factory=list)


def folder_value(user: User, record: NonConformity) -> str:
    if record.folder is None:
        return NONE
    if not visibility.can_see_folder(user, record.folder_id):
        return visibility.hidden_folder_label()
    return folder_label(record.folder)


def record_facts(user: User, record: NonConformity) -> Rows:
    """The record's fields as (label, value) rows, in the order the PDF shows them."""
    return [
        (_("Number"), record.reference),
        (_("Status"), label("status", record.status)),
        (_("Severity"), label("severity", record.severity)),
        (_("Origin"), label("origin", record.origin)),
        (_("Detection date"), day(record.detected_on)),
        (_("Detected by"), name(record.detected_by)),
        (_("Folder"), folder_value(user, record)),
        (_("Assignee"), name(record.assignee)),
        (_("Recorded by"), name(record.created_by)),
        (_("Product or process"), entry(record.product)),
        (_("Lot"), record.lot or NONE),
        (_("Quantity"), quantity(record.quantity, record.quantity_unit)),
        (_("Customer or supplier"), entry(record.partner)),
        (_("Cost of non-quality"), cost(record.nq_cost)),
    ]


def entry(value: CatalogEntry | None) -> str:
    if value is None:
        return NONE
    return _("%(kind)s: %(name)s", kind=CATALOG_KIND_LABELS[value.kind], name=value.name)


def quantity(value: Decimal | None, unit: str) -> str:
    if value is None:
        return NONE
    return f"{format_decimal(value)} {unit}".strip()


def cost(value: Decimal | None) -> str:
    return NONE if value is None else format_currency(value, COST_CURRENCY)


def record_texts(record: NonConformity) -> Rows:
    """The record's free texts as (heading, text) paragraphs."""
    return [(_("Description"), cut(record.description)),
            *immediate_texts(record),
            (_("Cause analysis"), cut(record.cause_analysis))]


def immediate_texts(record: NonConformity) -> Rows:
    return [(_("Immediate action"), cut(record.immediate_action))]


def analysis_rows(record: NonConformity) -> Rows:
    """The structured analysis as (label, text) rows: the 5 Whys' filled steps, the filled
    Ishikawa categories, the main cause; empty without an analysis."""
    analysis = tdb.get(RecordAnalysis, record.id)
    if analysis is None:
        return []
    rows = [(str(field_label(f)), cut(getattr(analysis, f)))
            for f in (*WHY_FIELDS, *ISHIKAWA_FIELDS) if getattr(analysis, f)]
    if analysis.main_cause:
        rows.append((str(field_label("main_cause")), str(CAUSE_LABELS[analysis.main_cause])))
    return rows


def problem_texts(record: NonConformity) -> Rows:
    return [(_("Description"), cut(record.description))]


def root_cause_texts(record: NonConformity) -> Rows:
    return [(_("Cause analysis"), cut(record.cause_analysis))]


def visible_actions(user: User, record: NonConformity) -> tuple[list[Action], int]:
    """The first :data:`ACTIONS_MAX` actions of the record ``user`` sees, and how many more
    there are."""
    limit = ACTIONS_MAX
    where = (Action.record_id == record.id, visibility.action_visibility(user))
    actions = list(tdb.execute(
        select(Action).where(*where)
        .order_by(Action.due_date.is_(None), Action.due_date, Action.id).limit(limit)).scalars())
    more = 0
    if len(actions) == limit:
        more = tdb.execute(select(func.count()).select_from(Action).where(*where)).scalar_one()
        more -= limit
    return actions, more


def effectiveness(action: Action) -> str:
    """The check's result, as the record page's action table says it."""
    result = check_result(action)
    if result is None:
        return NONE
    if action.check_overdue:
        return f"{label('check', result)} · {_('Check overdue')}"
    return label("check", result)


def action_line(action: Action) -> ActionLine:
    checked = NONE
    if action.effectiveness_checked_at is not None:
        checked = f"{name(action.effectiveness_checked_by)}, " \
                  f"{moment(action.effectiveness_checked_at)}"
    return ActionLine(
        title=cut(action.title), kind=label("kind", action.kind), owner=name(action.owner),
        due=day(action.due_date), status=label("action_status", action.status),
        done_on=moment(action.completed_at), result=effectiveness(action), checked=checked,
        comment=cut(action.effectiveness_comment, CELL_MAX) if action.effectiveness_comment
        else "", planned=day(action.effectiveness_due_on),
        criteria=cut(action.effectiveness_criteria, CELL_MAX))


def workflow_steps(record: NonConformity) -> list[Step]:
    """The last :data:`STEPS_MAX` status steps, oldest first."""
    steps = list(tdb.execute(select(StatusChange).where(StatusChange.record_id == record.id)
                             .order_by(StatusChange.changed_at.desc(), StatusChange.id.desc())
                             .limit(STEPS_MAX)).scalars())
    return [Step(status=step_status(s), who=name(s.changed_by), when=moment(s.changed_at),
                 comment=cut(s.comment, CELL_MAX) if s.comment else "",
                 justification=cut(s.justification, CELL_MAX) if s.justification else "")
            for s in reversed(steps)]


def step_status(step: StatusChange) -> str:
    """The status a step led to; a reopening says so (its reason is its justification)."""
    status = label("status", step.to_status)
    return f"{_('Reopened')} · {status}" if step.is_reopening else status


def _shown(value: str | None, coded: dict[str, str] | None) -> str:
    if value is None:
        return NONE
    if coded is not None:
        value = coded.get(value, value)
    return cut(value, HISTORY_VALUE_MAX)


def history(user: User, record: NonConformity) -> tuple[list[Change], int]:
    """The record's last :data:`HISTORY_MAX` changes as on its page (folder names masked),
    oldest first, and how many older ones are left out."""
    labels = translated_labels()
    rows = []
    changes = visible_history(user, record.id)
    for h in reversed(changes[:HISTORY_MAX]):
        coded = labels.get(h.field) if h.field in CODED_FIELDS else None
        rows.append(Change(when=moment(h.changed_at), who=name(h.user),
                           field=str(labels["field"].get(h.field, h.field)),
                           before=_shown(h.old_value, coded), after=_shown(h.new_value, coded)))
    return rows, max(len(changes) - HISTORY_MAX, 0)


def team(record: NonConformity, actions: list[Action]) -> Rows:
    """D1: who works on the record."""
    owners = dict.fromkeys(a.owner.name for a in actions if a.owner is not None)
    return [(_("Assignee"), name(record.assignee)),
            (_("Detected by"), name(record.detected_by)),
            (_("Action owners"), ", ".join(owners) or NONE)]


def build(user: User, record: NonConformity, *, tenant_name: str, logo_url: str | None,
          now: datetime) -> Report:
    """Everything both reports show of ``record``, read as ``user`` may read it."""
    actions, more_actions = visible_actions(user, record)
    lines = [action_line(a) for a in actions]
    omitted = []
    if more_actions:
        omitted.append(ngettext("%(num)d more action is not in this report: see the record's "
                                "page or the actions list.",
                                "%(num)d more actions are not in this report: see the record's "
                                "page or the actions list.", more_actions))
    changes, older = history(user, record)
    if older:
        omitted.append(ngettext("%(num)d older change is not in this report: see the record's "
                                "page.", "%(num)d older changes are not in this report: see "
                                "the record's page.", older))
    kinds: dict[str, list[ActionLine]] = {"immediate": [], "corrective": [], "preventive": []}
    for action, line in zip(actions, lines, strict=True):
        kinds.setdefault(action.kind, []).append(line)
    return Report(
        tenant_name=tenant_name, logo_url=logo_url, reference=record.reference,
        title=record.title, generated=moment(now), facts=record_facts(user, record),
        texts=record_texts(record), analysis=analysis_rows(record), actions=lines,
        steps=workflow_steps(record), history=changes, team=team(record, actions),
        kinds=kinds, omitted=omitted)


def eight_d(record: NonConformity, report: Report) -> list[Section]:
    """The eight disciplines, from the report's parts."""
    corrective = report.kinds["corrective"]
    return [
        Section("D1", _("Team"), rows=report.team),
        Section("D2", _("Problem description"), rows=report.facts,
                texts=problem_texts(record)),
        Section("D3", _("Containment actions"), texts=immediate_texts(record),
                actions=report.kinds["immediate"]),
        Section("D4", _("Root cause"), texts=root_cause_texts(record),
                analysis=report.analysis),
        Section("D5", _("Chosen corrective actions"), actions=corrective),
        Section("D6", _("Implementation and effectiveness verification"), actions=corrective,
                verification=True),
        Section("D7", _("Preventive actions"), actions=report.kinds["preventive"]),
        Section("D8", _("Closure"), steps=report.steps),
    ]
