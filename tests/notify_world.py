"""A tenant for the notification tests: an admin, a French manager, two English users (one
to be suspended), a moved clock (Monday 4 March 2030, 08:00 in Paris), mail sent in the request."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from core.clock import ManualClock, set_clock
from tests.conftest import in_tenant, login, provision

EXTERNAL = "https://qalitel.example.com"
START = datetime(2030, 3, 4, 7, 0, tzinfo=UTC)  # a Monday
TODAY = date(2030, 3, 4)
PEOPLE = {  # key: (email, name, profile, locale, suspended)
    "marie": ("marie@alpha.example", "Marie Curie", "manager", "fr", False),
    "john": ("john@alpha.example", "John Doe", "user", "en", False),
    "sam": ("sam@alpha.example", "Sam Gone", "user", "en", False),  # suspended by tests
}


@dataclass
class World:
    app: Any
    clock: ManualClock
    ids: dict[str, int] = field(default_factory=dict)

    def tenant(self):
        return in_tenant(self.app, "alpha")

    def client(self, who: str = "admin"):
        client = self.app.test_client()
        email = "admin@alpha.example" if who == "admin" else PEOPLE[who][0]
        assert login(client, "alpha", email).status_code == 302
        return client

    def action(self, title: str, owner: str, due: date | None, *, record: int | None = None,
               status: str = "planned") -> int:
        """An action made outside a request (no assignment mail), committed."""
        from qalitel.records import service
        from qalitel.records.models import NonConformity
        from qalitel.users.models import User
        from tenants.context import tdb

        with self.tenant():
            author = tdb.get(User, self.ids["admin"])
            target = tdb.get(NonConformity, record) if record else None
            action = service.create_action(author, title, record=target,
                                           owner_id=self.ids[owner], due_date=due,
                                           status=status)
            tdb.commit()
            return action.id

    def job(self) -> dict:
        result = self.app.test_cli_runner().invoke(
            args=["jobs", "run", "notifications", "--force", "--json"])
        assert result.exit_code in (0, 1), result.output
        [run] = json.loads(result.stdout)["jobs"]
        assert run["outcome"] == "ok", run
        return run["summary"]

    def notes(self) -> list[tuple[str, str, str, str | None, int]]:
        """(kind, recipient key, status, error, attempts) of every notification, in order."""
        from sqlalchemy import select

        from qalitel.notifications.models import Notification
        from tenants.context import tdb

        names = {v: k for k, v in self.ids.items()}
        with self.tenant():
            return [(n.kind, names.get(n.user_id, "?"), n.status, n.error, n.attempts)
                    for n in tdb.execute(select(Notification).order_by(Notification.id))
                    .scalars()]

    def set_preference(self, who: str, **values: Any) -> None:
        from qalitel.notifications.models import NotificationPreference
        from tenants.context import tdb

        with self.tenant():
            row = tdb.get(NotificationPreference, self.ids[who])
            if row is None:
                row = NotificationPreference(user_id=self.ids[who], assignment=True,
                                             due_soon=True, overdue=True, digest=True)
                tdb.add(row)
            for name, value in values.items():
                setattr(row, name, value)
            tdb.commit()


def make_world(make_app, backend: str, password_hash: str, **settings: Any) -> World:
    from qalitel.users.models import Profile, User
    from tenants.context import tdb

    app = make_app(backend, external_url=EXTERNAL, extra={"MAIL_BACKGROUND": False},
                   **settings)
    clock = ManualClock(START)
    set_clock(app, clock)
    handle = provision(app, "alpha", password_hash, records=0)
    world = World(app, clock, {"admin": handle.user_ids["admin"]})
    with world.tenant():
        for key, (email, name, profile, locale, suspended) in PEOPLE.items():
            user = User(email=email, name=name, password_hash=password_hash,
                        profile=Profile(profile), locale=locale,
                        suspended_at=START - timedelta(days=1) if suspended else None)
            tdb.add(user)
            tdb.flush()
            world.ids[key] = user.id
        tdb.get(User, world.ids["admin"]).locale = "en"
        tdb.commit()
    return world
