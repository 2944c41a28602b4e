"""Is the platform database ready for commands? Cron passes no ``QALITEL_*`` variable: a
command run without them opens the embedded default (``./instance``), which nobody
initialised. The command groups that need the platform tables are :class:`PlatformGroup`s:
each of their commands first checks :func:`platform_problem` and refuses (exit 2) with its
message instead of failing on a missing table."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

HINT = ("run `qalitel init` there, or give this command the host's QALITEL_* variables "
        "(cron passes none: source the env file, see the README's Scheduled jobs)")


def platform_problem(engine: Engine) -> str | None:
    """Why the platform database behind ``engine`` cannot serve yet (not reachable, never
    initialised, not at this code's schema revision), or None when it is ready."""
    from tenants.migrations import current_revision, head

    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            revision = current_revision(connection)
    except SQLAlchemyError as exc:
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"]
        first = lines[0][:300]
        return f"cannot open the platform database {where}: {first}"
    if revision is None:
        return f"the platform database {where} is not initialised: {HINT}"
    wanted = head("platform")
    if revision != wanted:
        return (f"the platform database {where} is at schema revision {revision}, this code "
                f"needs {wanted}: run `qalitel init`")
    return None


def _checked(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        from core.db import db

        problem = platform_problem(db.engine)
        if problem is not None:
            click.secho(f"Error: {problem}", fg="red", err=True)
            sys.exit(2)
        return callback(*args, **kwargs)

    return with_appcontext(run)


class PlatformGroup(click.Group):
    """A command group whose every command (added in any way) refuses, exit 2, when the
    platform database is not ready, before doing anything (``--help`` still works)."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if cmd.callback is not None:
            cmd.callback = _checked(cmd.callback)
        super().add_command(cmd, name)

