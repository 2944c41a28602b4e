"""The current tenant, held in one context, and the session bound to its database.

A request resolves its tenant once (``tenants.resolution``); CLI code and jobs enter
``tenant_context(...)`` explicitly. ``tdb`` is the session for tenant models: it raises
:class:`NoTenantError` when no tenant is set, and refuses platform models.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from werkzeug.local import LocalProxy

from core.db import WrongDatabaseError
from tenants.engines import EngineCache, TenantInfo
from tenants.schema import TenantBase


class NoTenantError(RuntimeError):
    """Tenant data was asked for while no tenant is set."""


@dataclass
class TenantContext:
    tenant: TenantInfo
    engine: Engine
    _session: Session | None = field(default=None, repr=False)

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = TenantSession(owner=self)
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


_current: ContextVar[TenantContext | None] = ContextVar("qalitel_tenant", default=None)


class TenantSession(Session):
    """Session whose bind is the current tenant's engine, checked at every use."""

    def __init__(self, owner: TenantContext) -> None:
        super().__init__(expire_on_commit=False)
        self._owner = owner

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):  # type: ignore[override]
        ctx = _current.get()
        if ctx is None:
            raise NoTenantError("no tenant is set")
        if ctx is not self._owner:
            raise NoTenantError("this session belongs to another tenant context")
        if mapper is not None:
            table = getattr(mapper, "persist_selectable", None)
            if table is not None and table.metadata is not TenantBase.metadata:
                raise WrongDatabaseError(
                    f"{mapper.class_.__name__} is a platform model: use core.db.db")
        return ctx.engine


def current_context() -> TenantContext:
    ctx = _current.get()
    if ctx is None:
        raise NoTenantError("no tenant is set")
    return ctx


def current_tenant() -> TenantInfo:
    return current_context().tenant


def has_tenant() -> bool:
    return _current.get() is not None


def engine_cache() -> EngineCache:
    return current_app.extensions["qalitel_engines"]


def enter(info: TenantInfo, engine: Engine):
    """Set the current tenant; returns the token ``leave`` needs. Used by request hooks."""
    if _current.get() is not None:
        raise RuntimeError("a tenant is already set in this context")
    return _current.set(TenantContext(tenant=info, engine=engine))


def leave(token) -> None:
    ctx = _current.get()
    try:
        if ctx is not None:
            ctx.close()
    finally:
        _current.reset(token)


@contextmanager
def tenant_context(info: TenantInfo, engine: Engine | None = None) -> Iterator[TenantContext]:
    """Work on one tenant's database (CLI, jobs, tests). Nested tenants are refused."""
    if engine is not None:
        token = enter(info, engine)
        try:
            yield _current.get()  # type: ignore[misc]
        finally:
            leave(token)
        return
    with engine_cache().lease(info) as leased:
        token = enter(info, leased)
        try:
            yield _current.get()  # type: ignore[misc]
        finally:
            leave(token)


tdb: Session = LocalProxy(lambda: current_context().session)  # type: ignore[assignment]
