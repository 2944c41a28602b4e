"""The ``qalitel`` command (also ``flask --app wsgi …``).

``qalitel`` loads what a command needs when it needs it: :data:`COMMANDS` names each group by
import path (click's lazy-group pattern), and a command that needs no page gets an app built
without blueprints (``create_app(web=False)``). Anything else (Flask's ``run``, ``shell``,
``routes``, or a command only registered on ``app.cli``) gets the full app.
"""

from __future__ import annotations

import importlib
import sys

import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo

from core import config
from core.config import Settings

COMMANDS: dict[str, tuple[str, bool]] = {
    # name: ("module:attribute", needs the full web app)
    "init": ("qalitel.cli_tenancy:init_command", False),
    "tenants": ("qalitel.cli_tenancy:tenants_group", False),
    "servers": ("qalitel.cli_tenancy:servers_group", False),
    "audit": ("maintenance.cli:audit_group", False),
    "files": ("qalitel.cli_files:files_group", False),
    "backup": ("backups.cli:backup_group", False),
    "jobs": ("qalitel.cli_jobs:jobs_group", True),
    "demo": ("qalitel.cli_tenancy:demo_command", True),
    "staff": ("maintenance.cli_staff:staff_group", True),
    "maintenance": ("maintenance.cli_staff:maintenance_group", True),
}


def settings() -> Settings:
    return config.settings()


def fail(message: str, code: int = 1) -> None:
    click.secho(f"Error: {message}", fg="red", err=True)
    sys.exit(code)


def load_command(name: str) -> click.Command:
    module, _, attribute = COMMANDS[name][0].partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{COMMANDS[name][0]} is not a click command")
    return command


def _full_app() -> Flask:
    from qalitel import create_app

    return create_app()


def _command_app() -> Flask:
    from qalitel import create_app

    return create_app(web=False)


class QalitelGroup(FlaskGroup):
    """A FlaskGroup whose own commands are imported on demand, each with the app it needs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(click.Group.list_commands(self, ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        info = ctx.ensure_object(ScriptInfo)
        if not COMMANDS[cmd_name][1]:
            info.create_app = _command_app
        return load_command(cmd_name)


def init_app(app: Flask) -> None:
    """Register every command on ``app.cli`` (for ``flask --app wsgi …``)."""
    for name in COMMANDS:
        app.cli.add_command(load_command(name))


def main() -> None:
    QalitelGroup(create_app=_full_app, add_default_commands=True,
                 help="QALITEL Host operations.")(prog_name="qalitel")
