"""Fixtures against throwaway real databases: SQLite files and a real PostgreSQL server.

They live in plugins under ``tests/fixtures/`` (``pg``: the server, this run's names and the
``backend`` fixture; ``apps``: ``make_app`` and signing in; ``tenants``; ``mail``: a real SMTP
server; ``maintenance``: staff and grants). Every database test runs on both backends through
the ``backend`` fixture. PostgreSQL tests skip when no server answers, unless
``QALITEL_REQUIRE_POSTGRES=1`` (set by CI), which turns that skip into a failure.

Test modules import helpers and constants from here (``from tests.conftest import login``).
"""

from __future__ import annotations

from tests.fixtures.apps import CSRF_RE, PASSWORD, csrf_token, login, settings_for
from tests.fixtures.mail import LINK_RE, MailBox, ReceivedMail, _free_port, link_in
from tests.fixtures.maintenance import (
    STAFF_PASSWORD,
    ClientWorld,
    MaintWorld,
    StaffHandle,
    grant_for_test,
    make_staff,
    staff_login,
    totp_code,
)
from tests.fixtures.pg import (
    BACKENDS,
    PG_PREFIX,
    PG_TEMPLATE,
    PG_URL,
    REQUIRE_PG,
    RUN,
    require_postgres,
)
from tests.fixtures.tenants import TenantHandle, TwoTenants, in_tenant, provision

pytest_plugins = [
    "tests.fixtures.pg",
    "tests.fixtures.apps",
    "tests.fixtures.tenants",
    "tests.fixtures.mail",
    "tests.fixtures.maintenance",
]

__all__ = [
    "BACKENDS", "CSRF_RE", "LINK_RE", "PASSWORD", "PG_PREFIX", "PG_TEMPLATE", "PG_URL",
    "REQUIRE_PG", "RUN", "STAFF_PASSWORD", "ClientWorld", "MailBox", "MaintWorld",
    "ReceivedMail", "StaffHandle", "TenantHandle", "TwoTenants", "_free_port", "csrf_token",
    "grant_for_test", "in_tenant", "link_in", "login", "make_staff", "provision",
    "require_postgres", "settings_for", "staff_login", "totp_code",
]
