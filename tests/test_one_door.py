"""No staff path, command or import reaches tenant content except the one door.

* Every ``/staff/`` URL rule (introspected from ``app.url_map``), with every method it takes,
  is called with plausible values — including another engineer's ACTIVE grant and the
  engineer's own pending, expired and revoked ones — and never returns the marker string
  written into the tenant's records. Nothing it does approves a request.
* Every registered ``qalitel`` command (introspected from ``app.cli``) is run with plausible
  arguments; no output, and no file it writes, holds the marker. None approves.
* Statically (ast): only the modules listed below import the tenant data plumbing.
"""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import click
import pytest
from flask import url_for

from core.db import db
from maintenance.models import Grant, GrantStatus, MaintenanceRequest, RequestStatus
from tests.conftest import csrf_token, grant_for_test, staff_login

ROOT = Path(__file__).resolve().parent.parent
DECIDING_WORDS = ("approve", "approval", "deny", "denial", "decide", "decision", "authorize",
                  "authorise", "consent")


def _world_without_active_grant(world):
    """Eve: a pending, an expired and a revoked grant on alpha. Mallory: an ACTIVE one."""
    app = world.app
    expired_grant = grant_for_test(app, world.request("alpha"), hours=0.5)
    revoked_grant = grant_for_test(app, world.request("alpha", scope="read-write"))
    with app.app_context():
        db.session.get(Grant, revoked_grant).status = GrantStatus.REVOKED
        db.session.commit()
    world.clock.advance(hours=1)
    pending = world.request("alpha")
    foreign_grant = grant_for_test(app, world.request("alpha", staff=world.mallory))
    return {"pending": pending, "grants": [expired_grant, revoked_grant, foreign_grant]}


def _candidates(world, ids) -> dict[str, list]:
    return {
        "slug": ["alpha", "bravo"],
        "public_id": [ids["pending"]],
        "grant_id": ids["grants"],
        "table": ["nonconformities", "users"],
        "record_id": [str(world.tenants.a.record_ids[0]),
                      str(world.tenants.a.user_ids["user"])],
    }


def _combinations(arguments: set[str], candidates: dict[str, list]) -> list[dict]:
    missing = arguments - set(candidates)
    assert not missing, f"a /staff/ rule takes {missing}: give this test values for it"
    combos: list[dict] = [{}]
    for name in sorted(arguments):
        combos = [{**combo, name: value} for combo in combos for value in candidates[name]]
    return combos


def _staff_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/staff")]


def _approved_state(app) -> tuple[int, int]:
    with app.app_context():
        return (db.session.query(Grant).count(),
                db.session.query(MaintenanceRequest)
                .filter_by(status=RequestStatus.APPROVED).count())


def test_no_staff_url_shows_tenant_content_without_an_active_grant(maint_world):
    world, app = maint_world, maint_world.app
    ids = _world_without_active_grant(world)
    candidates = _candidates(world, ids)
    before = _approved_state(app)
    rules = _staff_rules(app)
    assert {r.endpoint for r in rules} >= {"staff.index", "staff.grant_rows",
                                           "staff.grant_record", "staff.login"}
    anonymous = app.test_client()
    eve = app.test_client()
    assert staff_login(eve, app, world.eve).status_code == 302
    token = csrf_token(eve, "/staff/")
    anonymous_token = csrf_token(anonymous, "/staff/login")
    form = {"column": "title", "value": "overwritten", "tenant": "alpha", "reason": "walk",
            "scope": "read-write", "hours": "1", "email": world.eve.email,
            "password": "wrong password!", "code": "123456"}
    calls = 0
    for rule in rules:
        for values in _combinations(set(rule.arguments), candidates):
            with app.test_request_context():
                url = url_for(rule.endpoint, **values)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                for client, csrf in ((eve, token), (anonymous, anonymous_token)):
                    if method == "POST" and rule.endpoint == "staff.logout" and client is eve:
                        continue  # would end the walk's own session
                    data = {**form, "csrf_token": csrf} if method == "POST" else None
                    response = client.open(url, method=method, data=data)
                    calls += 1
                    body = response.get_data(as_text=True)
                    assert world.marker not in body, (method, url)
                    assert response.status_code < 500, (method, url, response.status_code)
                    if client is anonymous and rule.endpoint != "staff.login":
                        assert response.status_code == 302, (method, url)
                        assert "/staff/login" in response.headers["Location"]
    assert calls > 40
    assert eve.get("/staff/").status_code == 200  # the walk ran signed in throughout
    assert _approved_state(app) == before
    for rule in rules:
        text = (rule.rule + " " + rule.endpoint).lower()
        assert not any(word in text for word in DECIDING_WORDS), rule.rule


# ---------------------------------------------------------------- every command


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _value(param: click.Parameter, world, out: Path) -> list[str]:
    name = (param.name or "").lower()
    kind = param.type
    if isinstance(kind, click.Choice):
        value = str(kind.choices[0])
    elif isinstance(kind, click.types.IntParamType | click.types.FloatParamType):
        value = "1"
    elif isinstance(kind, click.Path | click.File) or name in ("output", "out", "file",
                                                                "path", "directory"):
        value = str(out / f"{name}-{len(list(out.iterdir()))}")
    elif name in ("email", "engineer"):
        value = world.eve.email
    elif "email" in name:
        value = "walker@example.org"
    elif "password" in name:
        value = "a walk password 123"
    elif name == "url":
        value = "postgresql://nobody@127.0.0.1:9/none"
    elif name in ("name", "server_name"):
        value = "walker"
    elif name == "reason":
        value = "walk every command"
    else:
        value = "alpha"
    return [value]


def _args(command: click.Command, world, out: Path, *, full: bool,
          flag: str | None = None) -> list[str]:
    args: list[str] = []
    for param in command.params:
        if isinstance(param, click.Option):
            if param.is_flag:
                if full or param.name == flag:
                    args.append(param.opts[0])
            elif param.required or full:
                args += [param.opts[0], *_value(param, world, out)]
        elif isinstance(param, click.Argument) and (param.required or full):
            args += _value(param, world, out)
    return args


def _invoke(app, args: list[str]):
    runner = app.test_cli_runner()
    outcome: dict = {}

    def run():
        outcome["result"] = runner.invoke(args=args, input="y\n" * 8)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), f"`qalitel {' '.join(args)}` did not finish in 120 s"
    return outcome["result"]


LAST = ("suspend", "deactivate", "sweep", "delete", "destroy", "close", "purge", "drop")


def test_no_command_prints_tenant_content_without_an_active_grant(maint_world, tmp_path):
    world, app = maint_world, maint_world.app
    _world_without_active_grant(world)
    before = _approved_state(app)
    out = tmp_path / "walk"
    out.mkdir()
    commands = sorted(_commands(app.cli), key=lambda item: (item[0][-1] in LAST, item[0]))
    assert {path for path, _ in commands} >= {("staff", "create"), ("maintenance", "request"),
                                              ("maintenance", "expire"), ("tenants", "list")}
    runs = 0
    for path, command in commands:
        assert not any(word in " ".join(path) for word in DECIDING_WORDS), path
        variants = [_args(command, world, out, full=False), _args(command, world, out, full=True)]
        variants += [_args(command, world, out, full=False, flag=p.name)
                     for p in command.params if isinstance(p, click.Option) and p.is_flag]
        for variant in variants:
            result = _invoke(app, [*path, *variant])
            runs += 1
            output = result.output + (result.stderr if result.stderr_bytes else "")
            assert world.marker not in output, (path, variant)
            assert not isinstance(result.exception, AssertionError), (path, variant)
    assert runs >= len(commands) * 2
    for written in out.rglob("*"):
        if written.is_file():
            assert world.marker.encode() not in written.read_bytes(), written
    assert _approved_state(app) == before


# ---------------------------------------------------------------- the static check

FORBIDDEN = {
    "tenants.engines": {"build_engine", "EngineCache"},
    "tenants.context": {"tenant_context", "tdb"},
}
#: Modules that may import the tenant data plumbing, each for a reason (besides tenants/):
ALLOWED_MODULES = {
    "maintenance.access",  # the one door staff go through
    "maintenance.client_views",  # the client admin's maintenance pages, run at the tenant
    "maintenance.notify",  # reads the client admins' e-mail addresses to notify them
    "qalitel.prefs", "qalitel.prefs_views", "qalitel.i18n",  # the client's own requests
    "qalitel.user_views",  # client admins' user pages and each user's profile, at the tenant
    # seed the demo tenant's own data (`qalitel demo`)
    "qalitel.demo", "qalitel.demo_records", "qalitel.demo_fields",
    "qalitel.transaction",  # commits the tenant session of the client's own request, once
    "qalitel.cli_files",  # `files sweep`: reads attachment hashes to delete unreferenced blobs
    # checks that a restored database opens as its tenant (identity row); no staff path, and
    # nothing read is shown: backups move whole databases as the tenant's role, encrypted
    "backups.restore",
    # the client's own exports (issue 9): built at the tenant as its own role, for its admin
    # (page) or for the operator the client asked (`tenants export|import`); the file goes
    # to whoever the client designates, never printed
    "qalitel.exports.jobs", "qalitel.exports.tenant_import", "qalitel.cli_exports",
    # replays the erasure ledger on the staged restored database before it goes live (as
    # backups.restore: no staff path, nothing shown)
    "backups.replay",
    # an operator's or the closure's full export, logged in the client's access log first
    "qalitel.exports.operator",
}
#: Packages of the client application whose every module serves requests AT the tenant.
ALLOWED_PACKAGES = ("qalitel.auth", "qalitel.users", "qalitel.records",
                    "qalitel.my_data",  # each user's own data (and its erasure replayed)
                    # mail to the tenant's own users about their own work: pages at the
                    # tenant, and the `notifications` job entering each tenant as its role
                    "qalitel.notifications",
                    # a record's PDF and 8D report, and the tenant's logo: pages at the tenant
                    "qalitel.reports")


def _allowed(module: str) -> bool:
    return module in ALLOWED_MODULES or any(
        module == package or module.startswith(package + ".") for package in ALLOWED_PACKAGES)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = {alias.name for alias in node.names}
            if node.module in FORBIDDEN:
                found |= {f"{node.module}.{n}" for n in names & FORBIDDEN[node.module]}
                if "*" in names:
                    found.add(f"{node.module}.*")
            if node.module == "tenants":
                found |= {f"tenants.{n}" for n in names & {"engines", "context"}}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in FORBIDDEN:
                    found.add(alias.name)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in (
                "__import__", "import_module"):
            args = [a.value for a in node.args if isinstance(a, ast.Constant)]
            if any(isinstance(a, str) and a.startswith("tenants.") for a in args):
                found.add(f"dynamic:{args[0]}")
    return found


def test_only_listed_modules_import_tenant_data_plumbing():
    offenders = {}
    scanned = 0
    for folder in ("qalitel", "maintenance", "backups"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            scanned += 1
            found = _imports(ast.parse(path.read_text(), filename=str(path)))
            module = _module_name(path)
            if found and not _allowed(module):
                offenders[module] = sorted(found)
    wsgi = ROOT / "wsgi.py"
    if wsgi.exists() and _imports(ast.parse(wsgi.read_text())):
        offenders["wsgi"] = sorted(_imports(ast.parse(wsgi.read_text())))
    assert scanned > 10
    assert not _allowed("maintenance.console") and not _allowed("maintenance.requests")
    assert not _allowed("maintenance.cli_staff") and not _allowed("qalitel.cli")
    assert offenders == {}, (
        "these modules reach tenant databases outside tenants/ and maintenance/access.py; "
        "staff code must go through maintenance.access (client-side code that runs at the "
        "tenant may be added to ALLOWED, with its reason)")


@pytest.mark.parametrize(("source", "flagged"), [
    ("from tenants.context import tdb", True),
    ("from tenants.context import tenant_context as tc", True),
    ("from tenants.engines import build_engine", True),
    ("from tenants.engines import EngineCache", True),
    ("from tenants import context", True),
    ("import tenants.context", True),
    ("__import__('tenants.context')", True),
    ("from tenants.engines import sqlite_path", False),
    ("from tenants.context import has_tenant", False),
])
def test_the_static_check_sees_every_import_form(source, flagged):
    assert bool(_imports(ast.parse(source))) is flagged
