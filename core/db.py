"""The platform database handle (``db``, whose ``init_app`` ``create_app`` calls) and the
declarative bases of both kinds of database."""

from __future__ import annotations

import enum

from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import Enum, MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class PlatformBase(DeclarativeBase):
    """Declarative base of the platform database (registry, staff, audit)."""

    metadata = MetaData(naming_convention=NAMING)


class TenantBase(DeclarativeBase):
    """Declarative base of tenant databases; only ``tenants.context.tdb`` binds it."""

    metadata = MetaData(naming_convention=NAMING)


class WrongDatabaseError(RuntimeError):
    """A model was used with the session of the other kind of database."""


class PlatformSession(FlaskSession):
    """Flask-SQLAlchemy's session, refusing tenant models."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):  # type: ignore[override]
        if mapper is not None:
            table = getattr(mapper, "persist_selectable", None)
            if table is not None and table.metadata is TenantBase.metadata:
                raise WrongDatabaseError(
                    f"{mapper.class_.__name__} is a tenant model: use tenants.context.tdb")
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


db = SQLAlchemy(model_class=PlatformBase, session_options={"class_": PlatformSession})


def value_enum(kind: type[enum.Enum]) -> Enum:
    """A column type storing an enum by its *values* in a plain string column (20 chars)."""
    return Enum(kind, native_enum=False, length=20,
                values_callable=lambda members: [m.value for m in members])
