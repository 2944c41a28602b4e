"""The records world (tests/records_world.py) enriched with everything that can refer to a
person: status changes, record and action history, comments, attachments, free-text
mentions, a group, clearances, shares and sign-ins. Used by the My data tests."""

from __future__ import annotations

from sqlalchemy import MetaData, String, Table, Text, inspect, select

from tests.records_world import World, build_world, client_for


def build_rich_world(app, password_hash) -> World:
    from qalitel.records import service
    from qalitel.records.files.models import ActionHistory, Attachment
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
        tdb.add(ActionHistory(action_id=action.id, user_id=world.users["user1"], field="files",
                              new_value="report by User acme.pdf"))
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


def visible_to(session, user_id: int):
    """``may_see(table, row)`` for :func:`scan_for`: the rows of records, actions and folders
    the person may read (by the visibility rules), for mentions."""
    from qalitel.records import visibility
    from qalitel.records.models import Action, Folder, NonConformity
    from qalitel.users.models import User

    user = session.get(User, user_id)
    records = set(session.execute(select(NonConformity.id).where(
        visibility.record_visibility(user))).scalars())
    actions = set(session.execute(select(Action.id).where(
        visibility.action_visibility(user))).scalars())
    folders = set(session.execute(select(Folder.id).where(
        visibility.folder_visibility(user))).scalars())

    def may_see(table: str, row) -> bool:
        if table == "nonconformities":
            return row["id"] in records
        if table == "actions":
            return row["id"] in actions
        if table == "folders":
            return row["id"] in folders
        return row.get("record_id") in records or row.get("action_id") in actions

    return may_see


def scan_for(session, user_id: int, name: str, email: str,
             may_see=None) -> dict[str, list[dict]]:
    """Independently of the export code: every row of every table of the live schema with a
    foreign key to users.id naming the person, or a text column holding their name or
    address (case-insensitive), the users row being theirs only; with ``may_see``, a
    mention counts only in a row it accepts."""
    from qalitel.my_data.collect import WITHHELD, plain

    conn = session.connection()
    inspector = inspect(conn)
    found: dict[str, list[dict]] = {}
    for name_ in inspector.get_table_names():
        if name_ in ("alembic_version", "tenant_identity"):
            continue
        table = Table(name_, MetaData(), autoload_with=conn)
        fks = [fk["constrained_columns"][0] for fk in inspector.get_foreign_keys(name_)
               if fk["referred_table"] == "users"]
        texts = [c.name for c in table.columns if isinstance(c.type, String | Text)]
        needles = (name.lower(), email.lower())
        for row in conn.execute(select(table)).mappings():
            hit = (name_ == "users" and row["id"] == user_id) or any(
                row[c] == user_id for c in fks) or (any(
                isinstance(row[c], str) and any(n in row[c].lower() for n in needles)
                for c in texts) and (may_see is None or may_see(name_, row)))
            if hit:
                hidden = WITHHELD.get(name_, ())
                found.setdefault(name_, []).append(
                    {k: plain(v) for k, v in row.items() if k not in hidden})
    return found


__all__ = ["World", "build_rich_world", "client_for", "scan_for", "visible_to"]
