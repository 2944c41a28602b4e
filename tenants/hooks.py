"""What the layers above register with the tenancy core, which imports none of them.

- ``lineages``: the two Alembic lineages, "platform" and "tenant": each one's script folder and
  the module importing every model of its kind (which completes the metadata). Plain data, so
  worker processes receive them as arguments (``tenants.migrate``).
- ``first rows``: what a new tenant's database receives besides its identity row (the app
  provides its first admin, hashing the password itself); see ``tenants.provisioning``.
- ``before_destroy``: called with ``(settings, tenant)`` by ``lifecycle.drop_tenant_data`` (a
  closure's drop, or ``destroy_tenant``), once the tenant is closed and before its database
  goes (maintenance purges the access log there, as an explicit, recorded operation). A hook
  that raises stops the drop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KINDS = ("platform", "tenant")


@dataclass(frozen=True)
class Lineage:
    """One Alembic lineage: where its scripts are, which module completes its metadata."""

    kind: str
    script_location: str
    models: str


@dataclass(frozen=True)
class FirstAdmin:
    """The first client admin of a new tenant; ``password_hash`` when the caller has one."""

    email: str
    name: str
    password: str
    password_hash: str | None = None


Row = tuple[Any, dict[str, Any]]
"""A ``(sqlalchemy.Table, column values)`` pair to insert into a new tenant database."""
FirstRows = Callable[[FirstAdmin], list[Row]]
BeforeDestroy = Callable[[Any, Any], None]

lineages: dict[str, Lineage] = {}
first_rows_providers: list[FirstRows] = []
before_destroy: list[BeforeDestroy] = []


class HookMissingError(LookupError):
    """The application did not register what the tenancy core needs for this operation."""


def register_lineage(lineage: Lineage) -> Lineage:
    if lineage.kind not in KINDS:
        raise ValueError(f"unknown lineage kind {lineage.kind!r}")
    lineages[lineage.kind] = lineage
    return lineage


def lineage(kind: str) -> Lineage:
    if kind not in KINDS:
        raise ValueError(f"unknown lineage kind {kind!r}")
    try:
        return lineages[kind]
    except KeyError:
        raise HookMissingError(f"no {kind} migration lineage registered (the application "
                               "registers it when imported)") from None


def provide_first_rows(provider: FirstRows) -> FirstRows:
    """Make ``provider`` the one source of a new tenant's first rows (usable as a decorator)."""
    first_rows_providers[:] = [provider]
    return provider


def first_rows(admin: FirstAdmin) -> list[Row]:
    if not first_rows_providers:
        raise HookMissingError("no provider of a new tenant's first rows registered (the "
                               "application registers it when imported)")
    return first_rows_providers[0](admin)


def on_before_destroy(hook: BeforeDestroy) -> BeforeDestroy:
    """Register ``hook`` once (usable as a decorator)."""
    if hook not in before_destroy:
        before_destroy.append(hook)
    return hook


def run_before_destroy(settings: Any, tenant: Any) -> None:
    for hook in list(before_destroy):
        hook(settings, tenant)
