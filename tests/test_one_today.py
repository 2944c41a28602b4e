"""One "today" (core.dates.today: the app's clock, in QALITEL_DEFAULT_TIMEZONE) for pages,
lists and mail, on both backends: at 00:30 in Paris (23:30 UTC) an action due the day
before is overdue for both, and a new record is detected on the Paris day."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from core.clock import ManualClock, set_clock
from tests.notify_world import make_world


def test_pages_and_mail_agree_on_today_around_midnight(make_app, backend, password_hash):
    from core import dates
    from qalitel.notifications import timing
    from qalitel.records import queries, service
    from qalitel.records.models import Action
    from qalitel.records.service import checks
    from qalitel.users.models import User
    from tenants.context import tdb

    world = make_world(make_app, backend, password_hash)
    set_clock(world.app, ManualClock(datetime(2030, 3, 4, 23, 30, tzinfo=UTC)))
    due = date(2030, 3, 4)
    world.action("yesterday's", "marie", due)
    with world.tenant():
        assert dates.today() == checks.today() == timing.today() == date(2030, 3, 5)
        action = tdb.execute(select(Action)).scalars().one()
        assert action.is_overdue and action.due_date < timing.today()
        marie = tdb.get(User, world.ids["marie"])
        assert queries.overdue_action_count(marie, checks.today(), mine=True) == 1
        record = service.create_nonconformity(marie, "Found after midnight")
        assert record.detected_on == date(2030, 3, 5)
        tdb.rollback()
    set_clock(world.app, ManualClock(datetime(2030, 3, 4, 22, 30, tzinfo=UTC)))  # 23:30
    with world.tenant():
        assert checks.today() == timing.today() == due
        assert not tdb.execute(select(Action)).scalars().one().is_overdue
