"""The workflow of a non-conformity: moves between statuses, the closure rules, the two
outcomes (closed, unfounded), reopening, and the tenant's rules of who may move what.

A record closes without a word only when every corrective action not cancelled is done and
judged effective; otherwise (one not effective, one not checked, none at all) closing needs
a written justification. An unfounded outcome and a reopening need one too. The
justification is kept in the status change and in the record's history. Unfinished actions
block both outcomes. Flush only: the request or the CLI command commits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from babel.lists import format_list
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import delete, select

from qalitel.records import visibility
from qalitel.records.models import (
    ACTION_CLOSED,
    COMMENT_MAX,
    FINAL_STATUSES,
    MANAGER_STEPS,
    REOPEN_TO,
    TRANSITIONS,
    WORKFLOW_ROLES,
    WORKFLOW_STEPS,
    Action,
    NonConformity,
    RecordHistory,
    StatusChange,
    WorkflowRule,
)
from qalitel.records.rules import Rules, workflow_rules
from qalitel.records.service.checks import (
    PermissionDenied,
    RecordError,
    RecordLocked,
    lock_record,
    now,
    text,
)
from qalitel.users.models import User
from tenants.context import tdb

JUSTIFICATION_MAX = COMMENT_MAX


def _status_label(status: str) -> str:
    from qalitel.records.forms import STATUS_LABELS

    return str(STATUS_LABELS[status])


def refusal(step: str, roles: frozenset[str]) -> str:
    """Who may make ``step`` under the tenant's rules, said to someone who may not."""
    if step == "reopen":
        if roles == {"manager"}:
            return _("Only managers may reopen this record.")
        return _("Only managers and the record's assignee may reopen this record.")
    status = _status_label(step)
    if roles == {"manager"}:
        return _("Only managers may move this record to “%(status)s”.", status=status)
    if roles == {"assignee"}:
        return _("Only the record's assignee may move it to “%(status)s”.", status=status)
    return _("Only managers and the record's assignee may move it to “%(status)s”.",
             status=status)


def _unfinished_actions(record: NonConformity) -> int:
    return len(tdb.execute(select(Action.id).where(
        Action.record_id == record.id, Action.status.notin_(ACTION_CLOSED))).all())


def closure_gaps(record: NonConformity) -> list[str]:
    """Why closing ``record`` needs a justification (empty: every corrective action not
    cancelled is done and judged effective)."""
    correctives = tdb.execute(select(Action.title, Action.status, Action.effective).where(
        Action.record_id == record.id, Action.kind == "corrective").order_by(Action.id)).all()
    if not any(status != "cancelled" for _title, status, _effective in correctives):
        return [_("it has no corrective action")]
    gaps = []
    for title, status, effective in correctives:
        if status == "cancelled":
            if effective is False:
                gaps.append(_("“%(title)s” was judged not effective, then cancelled",
                              title=title))
        elif status != "done":
            gaps.append(_("“%(title)s” is not finished", title=title))
        elif effective is None:
            gaps.append(_("“%(title)s” has not been checked for effectiveness", title=title))
        elif not effective:
            gaps.append(_("“%(title)s” was judged not effective", title=title))
    return gaps


def _join(items: list[str]) -> str:
    locale = get_locale()
    return format_list(items, locale=str(locale) if locale is not None else "en")


def _record_step(actor: User, record: NonConformity, to_status: str, comment: str,
                 justification: str | None) -> StatusChange:
    step = StatusChange(record_id=record.id, from_status=record.status, to_status=to_status,
                        changed_by_id=actor.id, changed_at=now(), comment=comment,
                        justification=justification or None)
    tdb.add(step)
    tdb.add(RecordHistory(record_id=record.id, user_id=actor.id, changed_at=step.changed_at,
                          field="status", old_value=record.status, new_value=to_status))
    if justification:
        tdb.add(RecordHistory(record_id=record.id, user_id=actor.id,
                              changed_at=step.changed_at, field="justification",
                              old_value=None, new_value=justification))
    record.status = to_status
    tdb.flush()
    return step


def change_status(actor: User, record: NonConformity, to_status: str, comment: str = "",
                  justification: str = "") -> StatusChange:
    """Move a record one step along :data:`TRANSITIONS`, as the tenant's rules allow,
    keeping who, when and (where the closure rules ask for it) why."""
    lock_record(record)
    if record.is_final:
        raise RecordLocked(record)
    if to_status not in TRANSITIONS.get(record.status, ()):
        raise RecordError(_("This record cannot move from this status to that one."))
    rules = workflow_rules()
    if not visibility.may_move(actor, record, to_status, rules):
        raise PermissionDenied(refusal(to_status, rules[to_status]))
    comment = text(comment, COMMENT_MAX, _("Comment"))
    justification = text(justification, JUSTIFICATION_MAX, _("Justification"))
    if to_status == "treatment" and not record.cause_analysis.strip():
        raise RecordError(_("Write the cause analysis before moving to treatment."))
    if to_status in FINAL_STATUSES and _unfinished_actions(record):
        raise RecordError(_("Finish or cancel every action of this record before "
                            "closing it."))
    if to_status == "unfounded" and not justification:
        raise RecordError(_("Say why this record is unfounded: the justification is "
                            "required."))
    if to_status == "closed" and not justification:
        gaps = closure_gaps(record)
        if gaps:
            raise RecordError(_("Closing this record needs a written justification: "
                                "%(reasons)s.", reasons=_join(gaps)))
    return _record_step(actor, record, to_status, comment, justification)


def reopen(actor: User, record: NonConformity, reason: str) -> StatusChange:
    """Take a closed or unfounded record back to work (:data:`REOPEN_TO`), with the
    reason, who and when kept in its workflow and history."""
    lock_record(record)
    if not record.is_final:
        raise RecordError(_("Only a closed or unfounded record can be reopened."))
    rules = workflow_rules()
    if not visibility.may_move(actor, record, "reopen", rules):
        raise PermissionDenied(refusal("reopen", rules["reopen"]))
    reason = text(reason, JUSTIFICATION_MAX, _("Reason"))
    if not reason:
        raise RecordError(_("Say why this record is reopened: the reason is required."))
    return _record_step(actor, record, REOPEN_TO[record.status], "", reason)


def check_rules(wanted: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """Rules as the admin's form sends them, checked: every move, known roles only, nobody
    left for no move, managers kept for the outcomes and reopening."""
    if set(wanted) != set(WORKFLOW_STEPS):
        raise RecordError(_("Unknown workflow step."))
    checked: dict[str, frozenset[str]] = {}
    for step in WORKFLOW_STEPS:
        roles = frozenset(wanted[step])
        if not roles <= set(WORKFLOW_ROLES):
            raise RecordError(_("Unknown role in the workflow rules."))
        if not roles:
            raise RecordError(_("“%(step)s”: at least one role must be allowed.",
                                step=step_label(step)))
        if step in MANAGER_STEPS and "manager" not in roles:
            raise RecordError(_("“%(step)s”: managers always keep this move.",
                                step=step_label(step)))
        checked[step] = roles
    return checked


def step_label(step: str) -> str:
    return _("Reopen") if step == "reopen" else _status_label(step)


def save_rules(actor: User, wanted: Mapping[str, Iterable[str]]) -> list[str]:
    """Replace the tenant's workflow rules (client admins only); returns the moves whose
    rule changed."""
    if not visibility.can_edit_workflow_rules(actor):
        raise PermissionDenied()
    checked = check_rules(wanted)
    current: Rules = workflow_rules()
    changed = [step for step in WORKFLOW_STEPS if checked[step] != current[step]]
    if not changed:
        return []
    tdb.execute(delete(WorkflowRule))
    stamp = now()
    for step in WORKFLOW_STEPS:
        for role in sorted(checked[step]):
            tdb.add(WorkflowRule(to_status=step, allowed=role, updated_by_id=actor.id,
                                 updated_at=stamp))
    tdb.flush()
    return changed
