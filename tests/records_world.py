"""A tenant populated for the records tests: every profile, folders (one confidential
folder cleared through a group, one cleared for nobody), records that concern different
people, shares and actions. Used by test_records, test_visibility, test_records_input."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask import Flask

from tests.conftest import TenantHandle, provision


@dataclass
class World:
    app: Flask
    slug: str
    handle: TenantHandle
    emails: dict[str, str] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    folders: dict[str, int] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)
    numbers: dict[str, int] = field(default_factory=dict)
    actions: dict[str, int] = field(default_factory=dict)

    @contextmanager
    def context(self):
        """Work inside the tenant (``with world.context():``), as CLI code would: one unit of
        work, committed when the block ends normally, rolled back when it raises."""
        from core.db import db
        from qalitel.transaction import unit_of_work
        from tenants.context import tenant_context
        from tenants.engines import TenantInfo
        from tenants.registry import Tenant

        row = db.session.query(Tenant).filter_by(slug=self.slug).one()
        with tenant_context(TenantInfo.from_row(row)) as ctx, unit_of_work():
            yield ctx

    def user(self, key: str):
        from qalitel.users.models import User
        from tenants.context import tdb

        return tdb.get(User, self.users[key])


# Which records each profile sees (the rules of qalitel.records.visibility).
EXPECTED = {
    "user1": {"by_user1", "assigned_user1", "shared_user1", "action_user1"},
    "user2": {"legal_user2"},
    "manager1": {"by_user1", "assigned_user1", "shared_user1", "action_user1", "other"},
    "manager2": {"by_user1", "assigned_user1", "shared_user1", "action_user1", "other", "hr"},
    "admin": {"by_user1", "assigned_user1", "shared_user1", "action_user1", "other", "hr",
              "legal", "legal_user2"},
}


def build_world(app: Flask, password_hash: str, slug: str = "acme") -> World:
    from qalitel.records import service
    from qalitel.records.models import Folder, FolderClearance, RecordShare
    from qalitel.users.models import Group, Profile, User, UserGroup
    from tenants.context import tdb

    handle = provision(app, slug, password_hash, records=0)
    world = World(app=app, slug=slug, handle=handle)
    world.emails = {"admin": handle.admin_email, "user1": handle.user_email}
    world.users = {"admin": handle.user_ids["admin"], "user1": handle.user_ids["user"]}
    with app.app_context(), world.context():
        for key, profile in (("user2", Profile.USER), ("manager1", Profile.MANAGER),
                             ("manager2", Profile.MANAGER)):
            email = f"{key}@{slug}.example"
            user = User(email=email, name=f"{key.title()} {slug}", password_hash=password_hash,
                        profile=profile)
            tdb.add(user)
            tdb.flush()
            world.users[key] = user.id
            world.emails[key] = email
        group = Group(name="Quality team")
        tdb.add(group)
        tdb.flush()
        tdb.add(UserGroup(user_id=world.users["manager2"], group_id=group.id))
        for name, confidential in (("General", False), ("HR", True), ("Legal", True)):
            folder = Folder(name=name, confidential=confidential)
            tdb.add(folder)
            tdb.flush()
            world.folders[name] = folder.id
        tdb.add(FolderClearance(folder_id=world.folders["HR"], group_id=group.id))
        tdb.commit()

        u = {key: world.user(key) for key in world.users}

        def record(key: str, author: str, **kw):
            rec = service.create_nonconformity(u[author], f"{key} title", f"{key} body", **kw)
            world.records[key] = rec.id
            world.numbers[key] = rec.number
            return rec

        record("by_user1", "user1")
        record("assigned_user1", "manager1", assignee_id=world.users["user1"],
               folder_id=world.folders["General"])
        shared = record("shared_user1", "manager1")
        tdb.add(RecordShare(record_id=shared.id, user_id=world.users["user1"]))
        tdb.commit()
        with_action = record("action_user1", "manager1")
        record("other", "manager1", folder_id=world.folders["General"], severity="critical")
        record("hr", "admin", folder_id=world.folders["HR"], severity="major")
        record("legal", "admin", folder_id=world.folders["Legal"])
        record("legal_user2", "admin", folder_id=world.folders["Legal"],
               assignee_id=world.users["user2"])

        overdue = service.create_action(u["manager1"], "action_user1 overdue", record=with_action,
                                        owner_id=world.users["user1"],
                                        due_date=date.today() - timedelta(days=3))
        world.actions["overdue_user1"] = overdue.id
        hr_action = service.create_action(u["admin"], "hr action",
                                          record=tdb.get(type(with_action), world.records["hr"]),
                                          owner_id=world.users["admin"])
        world.actions["hr"] = hr_action.id
        standalone = service.create_action(u["manager1"], "standalone manager1",
                                           owner_id=world.users["manager1"],
                                           due_date=date.today() + timedelta(days=10))
        world.actions["standalone_manager1"] = standalone.id
        standalone2 = service.create_action(u["manager1"], "standalone user2",
                                            owner_id=world.users["user2"],
                                            due_date=date.today() - timedelta(days=1))
        world.actions["standalone_user2"] = standalone2.id
    return world


# Which actions each profile sees.
EXPECTED_ACTIONS = {
    "user1": {"overdue_user1"},
    "user2": {"standalone_user2"},
    "manager1": {"overdue_user1", "standalone_manager1", "standalone_user2"},
    "manager2": {"overdue_user1", "standalone_manager1", "standalone_user2", "hr"},
    "admin": {"overdue_user1", "standalone_manager1", "standalone_user2", "hr"},
}


def client_for(world: World, profile: str):
    """A test client signed in as ``profile``, reading English pages."""
    from tests.conftest import login

    client = world.app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    assert login(client, world.slug, world.emails[profile]).status_code == 302
    return client
