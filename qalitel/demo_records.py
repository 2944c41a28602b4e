"""The demo's quality records, written through the records service as people would.

Each non-conformity of :data:`qalitel.demo_data.RECORDS` missing from the tenant is created
by its detector, moved along the workflow by the quality manager (with comments), given its
cause analysis by its assignee, edited now and then, and given actions; so its status
changes and history rows are the service's own. Then its timestamps are moved back to its
detection date, so the history reads like weeks of work rather than one second.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from qalitel import demo_data as data
from qalitel import demo_fields
from qalitel.records import service
from qalitel.records.models import (
    STATUSES,
    Action,
    Folder,
    NonConformity,
    RecordHistory,
    StatusChange,
)
from qalitel.users.models import User
from tenants.context import tdb

DETECTORS = ("sophie", "ulysse", "marc", "sophie", "james", "claire")
ASSIGNEES = ("marc", "claire", "sophie", "ulysse", "marc", "claire")
LOWER = {"critical": "major", "major": "minor"}


def _rank(status: str) -> int:
    return STATUSES.index(status)


def _people(spec: data.Spec, index: int) -> tuple[str, str]:
    """(detector, assignee) keys; confidential records name cleared people only."""
    if spec.folder == data.CONFIDENTIAL:
        return ("alice" if index % 2 else "claire"), "claire"
    if spec.lang == "en":
        return "james", "claire"
    return DETECTORS[index % len(DETECTORS)], ASSIGNEES[index % len(ASSIGNEES)]


def ensure_folders(people: dict[str, User]) -> dict[str, Folder]:
    """The demo folders (created by the admin), the board group cleared for the
    confidential one."""
    from qalitel.users.service import create_group, list_groups, set_group_members

    admin = people["alice"]
    folders = {f.name: f for f in tdb.execute(select(Folder)).scalars()}
    for name, confidential in data.FOLDERS:
        if name not in folders:
            folders[name] = service.create_folder(admin, name, confidential=confidential)
    group = next((g for g in list_groups() if g.name == data.BOARD_GROUP), None)
    if group is None:
        group = create_group(data.BOARD_GROUP)
        set_group_members(group, [people[key].id for key in data.BOARD_MEMBERS])
        service.grant_clearance(admin, folders[data.CONFIDENTIAL], group_id=group.id)
    return folders


def _record(spec: data.Spec, index: int, people: dict[str, User], folders: dict[str, Folder],
            today: date) -> NonConformity:
    detector, assignee = (people[key] for key in _people(spec, index))
    manager = people["claire"]
    escalated = index % 5 == 1 and spec.status != "open" and spec.severity in LOWER
    record = service.create_nonconformity(
        detector, spec.title, spec.description, detected_on=today - timedelta(spec.days_ago),
        origin=spec.origin, severity=LOWER[spec.severity] if escalated else spec.severity,
        folder_id=folders[spec.folder].id if spec.folder else None, assignee_id=assignee.id,
        fields=demo_fields.fields_for(spec, index))
    if escalated:
        service.update_nonconformity(manager, record, severity=spec.severity)
    if spec.title in data.SHARED_WITH_ULYSSE:  # before any outcome: closed records are read-only
        service.share_record(manager, record, people["ulysse"].id)
    texts, comments = data.ACTIONS[spec.lang], data.COMMENTS[spec.lang]
    rank = _rank(spec.status)

    def act(kind: str, title: str, due: int | None, status: str) -> Action:
        return service.create_action(manager, title, record=record, kind=kind,
                                     owner_id=assignee.id, status=status,
                                     due_date=today + timedelta(due) if due is not None
                                     else None)

    if spec.status == "unfounded":  # found baseless during the analysis
        service.change_status(manager, record, "analysis", comments["analysis"])
        service.change_status(manager, record, "unfounded",
                              justification=comments["unfounded"])
        return record
    if rank == 0:
        if index % 2 == 0:
            act("immediate", texts["immediate"][spec.origin], 3, "planned")
        return record
    service.change_status(manager, record, "analysis", comments["analysis"])
    overdue_immediate = rank == 1 and index % 3 == 0
    act("immediate", texts["immediate"][spec.origin], -3 if overdue_immediate else -1,
        "planned" if overdue_immediate else "done")
    if rank == 1:
        return record
    service.update_nonconformity(assignee, record, cause_analysis=spec.cause)
    demo_fields.analyse(assignee, record, spec, index)
    service.change_status(manager, record, "treatment", comments["treatment"])
    corrective = act("corrective", texts["corrective"][spec.origin],
                     -(4 + index % 9) if index % 2 == 0 else 12, "in_progress")
    if spec.severity == "critical" or rank >= 3:
        act("preventive", texts["preventive"], 25 if rank < 4 else -20,
            "planned" if rank < 4 else "done")
    if index % 7 == 3 and spec.folder != data.CONFIDENTIAL:
        service.update_nonconformity(manager, record, assignee=people["marc"].id)
    if rank == 2:
        return record
    service.update_action(manager, corrective, status="done")
    service.change_status(manager, record, "verification", comments["verification"])
    if spec.title == data.REOPENED:
        service.change_status(manager, record, "treatment", comments["reopen"])
        service.change_status(manager, record, "verification", comments["verification"])
    if rank == 3:
        return record
    if index % 2 == 0:
        act("corrective", texts["cancelled"], None, "cancelled")
    service.check_effectiveness(manager, corrective, True, data.EFFECTIVE[spec.lang])
    service.change_status(manager, record, "closed", comments["closed"])
    return record


def _backdate(record: NonConformity, days_ago: int) -> None:
    """Spread the record's events from its detection (08:30 UTC) to an hour ago."""
    now = datetime.now(UTC)
    start = (datetime.combine(record.detected_on, time(8, 30), UTC) if days_ago
             else now - timedelta(hours=3))
    span = max(now - timedelta(hours=1) - start, timedelta(minutes=30))
    changes = list(tdb.execute(select(StatusChange).where(
        StatusChange.record_id == record.id)).scalars())
    history = list(tdb.execute(select(RecordHistory).where(
        RecordHistory.record_id == record.id)).scalars())
    moments = sorted({row.changed_at for row in [*changes, *history]})
    slot = {moment: start + span * (i / max(len(moments), 1))
            for i, moment in enumerate(moments)}
    for row in [*changes, *history]:
        row.changed_at = slot[row.changed_at]
    record.created_at = start
    for action in tdb.execute(select(Action).where(Action.record_id == record.id)).scalars():
        action.created_at = start + span * 0.2
        if action.completed_at is not None:
            action.completed_at = start + span * 0.6
        if action.effectiveness_checked_at is not None:
            action.effectiveness_checked_at = start + span * 0.9
    tdb.commit()


def ensure_records(people: dict[str, User], folders: dict[str, Folder]) -> int:
    """Create the missing demo records (oldest first, so numbers follow time); how many."""
    existing = set(tdb.execute(select(NonConformity.title)).scalars())
    today = service.today()
    made = 0
    demo_fields.ensure_catalog(people["alice"])
    ordered = sorted(enumerate(data.RECORDS), key=lambda pair: -pair[1].days_ago)
    for index, spec in ordered:
        if spec.title in existing:
            continue
        record = _record(spec, index, people, folders, today)
        _backdate(record, spec.days_ago)
        made += 1
    demo_fields.archive_old(people["alice"])
    return made


def ensure_standalone_actions(people: dict[str, User]) -> int:
    existing = set(tdb.execute(select(Action.title).where(Action.record_id.is_(None))).scalars())
    today = service.today()
    made = 0
    for title, kind, owner, due, status in data.STANDALONE:
        if title in existing:
            continue
        service.create_action(people["claire"], title, kind=kind, owner_id=people[owner].id,
                              due_date=today + timedelta(due), status=status)
        made += 1
    return made
