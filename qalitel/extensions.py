"""Extensions made at module level; ``create_app`` calls their ``init_app``."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class PlatformBase(DeclarativeBase):
    """Declarative base of the platform database (registry, staff, audit)."""

    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


class WrongDatabaseError(RuntimeError):
    """A model was used with the session of the other kind of database."""


class PlatformSession(FlaskSession):
    """Flask-SQLAlchemy's session, refusing tenant models."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):  # type: ignore[override]
        if mapper is not None:
            from tenants.schema import TenantBase

            table = getattr(mapper, "persist_selectable", None)
            if table is not None and table.metadata is TenantBase.metadata:
                raise WrongDatabaseError(
                    f"{mapper.class_.__name__} is a tenant model: use tenants.context.tdb")
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


db = SQLAlchemy(model_class=PlatformBase, session_options={"class_": PlatformSession})
