"""What the layers above register with the tenancy core, which imports none of them.

- ``before_destroy``: called with ``(settings, tenant)`` inside ``destroy_tenant``, after the
  tenant is marked closed and before its registry row goes (maintenance purges the access log
  there, as an explicit, recorded operation). A hook that raises stops the destruction.
- ``first_rows``: what a new tenant's database receives besides its identity row (the app
  registers its first admin); see ``tenants.provisioning``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

BeforeDestroy = Callable[[Any, Any], None]

before_destroy: list[BeforeDestroy] = []


def on_before_destroy(hook: BeforeDestroy) -> BeforeDestroy:
    """Register ``hook`` once (usable as a decorator)."""
    if hook not in before_destroy:
        before_destroy.append(hook)
    return hook


def run_before_destroy(settings: Any, tenant: Any) -> None:
    for hook in list(before_destroy):
        hook(settings, tenant)
