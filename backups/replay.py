"""What must be re-applied to a restored database before it goes live, registered by the
layers above (the app registers its erasure ledger, :mod:`qalitel.my_data.replay`): backups
import nothing of theirs.

A replayer is called with the *staged* database's :class:`TenantInfo`, an engine on it, and
the uids whose records apply (the archive's tenant and the tenant restored into). A replayer
that raises fails the restore, which then leaves the live tenant as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.config import Settings
from tenants.engines import TenantInfo, build_engine

Replayer = Callable[[TenantInfo, Any, tuple[str, ...]], object]

replayers: list[Replayer] = []


def on_restore(replayer: Replayer) -> Replayer:
    """Register ``replayer`` once (usable as a decorator)."""
    if replayer not in replayers:
        replayers.append(replayer)
    return replayer


def replay(info: TenantInfo, settings: Settings, uids: tuple[str, ...]) -> None:
    if not replayers:
        return
    engine = build_engine(info, settings, pooled=False)
    try:
        for replayer in list(replayers):
            replayer(info, engine, uids)
    finally:
        engine.dispose()
