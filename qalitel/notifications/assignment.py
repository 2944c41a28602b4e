"""The assignment mail: an action given an owner, a record given an assignee, other than the
person acting. Queued with the change and sent once the request commits."""

from __future__ import annotations

from flask import has_request_context

from qalitel.notifications import delivery, timing
from qalitel.notifications.models import Kind
from qalitel.records.models import Action, NonConformity
from qalitel.users.models import User
from tenants.context import tdb


def notify_assignment(actor: User, target: Action | NonConformity) -> None:
    """Call after a write that set ``target``'s owner (action) or assignee (record).

    Only a person's act in a request notifies: seeding by the demo or an import does not,
    and the job never sends what such code queued either, as nothing is queued."""
    if not has_request_context():
        return
    user_id = target.owner_id if isinstance(target, Action) else target.assignee_id
    if user_id is None or user_id == actor.id:
        return
    user = tdb.get(User, user_id)
    if user is None or user.is_suspended or user.is_tombstone:
        return
    if not timing.wanted(Kind.ASSIGNMENT, user_id) or not delivery.visible(user, target):
        return
    kind = "action" if isinstance(target, Action) else "record"
    key = f"assignment:{user_id}:{kind}:{target.id}:{timing.today().isoformat()}"
    note = delivery.queue(Kind.ASSIGNMENT, user_id, key, target)
    if note is not None:
        delivery.send_after_commit([note])
