"""The records world (tests/records_world.py) enriched with everything that can refer to a
person: status changes, record and action history, comments, attachments, free-text
mentions, a group, clearances, shares and sign-ins. Used by the My data tests."""

from __future__ import annotations

from tests.records_world import World, build_world, client_for


def build_rich_world(app, password_hash) -> World:
    from qalitel.records import service
    from qalitel.records.files.models import Attachment
    from qalitel.records.models import Action, FolderClearance, NonConformity
    from qalitel.users.models import Group, UserGroup
    from tenants.context import tdb

    world = build_world(app, password_hash)
    with app.app_context(), world.context():
        u = {key: world.user(key) for key in world.users}
        mine = tdb.get(NonConformity, world.records["by_user1"])
        assigned = tdb.get(NonConformity, world.records["assigned_user1"])
        service.change_status(u["manager1"], assigned, "analysis", "Checked with User acme")
        other = tdb.get(NonConformity, world.records["other"])
        service.update_nonconformity(u["manager1"], other,
                                     description="Ask User acme (user@acme.example) again",
                                     assignee=world.users["user1"])
        service.update_nonconformity(u["admin"], other, assignee=world.users["manager1"])
        action = tdb.get(Action, world.actions["overdue_user1"])
        service.update_action(u["user1"], action, title="overdue, seen by me", status="done")
        service.check_effectiveness(u["manager1"], action, True, "User acme did it well")
        tdb.add(Attachment(record_id=mine.id, name="photo of User acme.jpg", size=12,
                           sha256="ab" * 32, kind="image", content_type="image/jpeg",
                           uploaded_by_id=world.users["user1"]))
        group = Group(name="Night shift")
        tdb.add(group)
        tdb.flush()
        tdb.add(UserGroup(user_id=world.users["user1"], group_id=group.id))
        tdb.add(FolderClearance(folder_id=world.folders["Legal"], user_id=world.users["user1"],
                                granted_by_id=world.users["admin"]))
    for profile in ("user1", "manager1"):
        client_for(world, profile)  # a successful sign-in each
    bad = world.app.test_client()
    from tests.conftest import login

    assert login(bad, world.slug, world.emails["user1"], "wrong password!").status_code == 401
    return world


__all__ = ["World", "build_rich_world", "client_for"]
