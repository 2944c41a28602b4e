"""Helpers of the closure and workflow-rule tests: records brought along the workflow by
the service, forms posted with their CSRF token, and a snapshot of everything a refused
request must leave as it was."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from tests.conftest import csrf_token
from tests.records_world import World

PATH = ("analysis", "treatment", "verification")


def post(client, url: str, data: dict[str, Any], token_url: str | None = None):
    """POST ``data`` with a valid CSRF token (read from the tenant's home page)."""
    token = csrf_token(client, token_url or "/".join(url.split("/")[:3]) + "/")
    return client.post(url, data={"csrf_token": token, **data})


def record_url(world: World, key: str) -> str:
    return f"/t/{world.slug}/records/{world.records[key]}"


def bring_to(world: World, key: str, status: str,
             actions: tuple[tuple[str, str, bool | None], ...] = ()) -> None:
    """Move record ``key`` (as manager1) up to ``status``, giving it ``actions`` on the way:
    (kind, status, effective) each, effectiveness recorded when not None."""
    from qalitel.records import service
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        manager = world.user("manager1")
        record = tdb.get(NonConformity, world.records[key])
        if not record.cause_analysis:
            service.update_nonconformity(manager, record, cause_analysis="Worn fixture")
        for i, (kind, action_status, effective) in enumerate(actions):
            action = service.create_action(manager, f"{kind} {i}", record=record, kind=kind,
                                           status=action_status)
            if effective is not None:
                service.check_effectiveness(manager, action, effective)
            world.actions[f"{key}-{i}"] = action.id
        done = PATH.index(record.status) + 1 if record.status in PATH else 0
        for step in PATH[done:PATH.index(status) + 1]:
            service.change_status(manager, record, step)


def close(world: World, key: str, justification: str = "Accepted by the customer") -> None:
    """Bring ``key`` to verification and close it (with a justification: it has no proof)."""
    from qalitel.records import service
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    bring_to(world, key, "verification")
    with world.app.app_context(), world.context():
        record = tdb.get(NonConformity, world.records[key])
        service.change_status(world.user("manager1"), record, "closed",
                              justification=justification)


def snapshot(world: World, key: str) -> dict[str, Any]:
    """The record's columns, its actions' columns and how many rows hang from it."""
    from qalitel.records.files.models import Attachment
    from qalitel.records.models import (
        Action,
        NonConformity,
        RecordHistory,
        RecordShare,
        StatusChange,
        WorkflowRule,
    )
    from tenants.context import tdb

    def columns(obj) -> dict[str, Any]:
        return {c.key: getattr(obj, c.key) for c in type(obj).__table__.columns}

    record_id = world.records[key]
    with world.app.app_context(), world.context():
        state: dict[str, Any] = columns(tdb.get(NonConformity, record_id))
        state["actions"] = [columns(a) for a in tdb.execute(
            select(Action).where(Action.record_id == record_id).order_by(Action.id)).scalars()]
        for model in (RecordHistory, StatusChange, RecordShare, Attachment):
            state[model.__name__] = tdb.execute(select(func.count()).select_from(model).where(
                model.record_id == record_id)).scalar()
        state["rules"] = sorted(tdb.execute(
            select(WorkflowRule.to_status, WorkflowRule.allowed)).all())
        return state


def status_of(world: World, key: str) -> str:
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        return tdb.get(NonConformity, world.records[key]).status


def steps_of(world: World, key: str) -> list[Any]:
    from qalitel.records.models import StatusChange
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        rows = tdb.execute(select(StatusChange).where(
            StatusChange.record_id == world.records[key]).order_by(StatusChange.id)).scalars()
        return [(s.from_status, s.to_status, s.changed_by_id, s.justification, s.changed_at)
                for s in rows]


def history_of(world: World, key: str) -> list[tuple[str, str | None, str | None, int | None]]:
    from qalitel.records.models import RecordHistory
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        rows = tdb.execute(select(RecordHistory).where(
            RecordHistory.record_id == world.records[key]).order_by(RecordHistory.id)).scalars()
        return [(h.field, h.old_value, h.new_value, h.user_id) for h in rows]
