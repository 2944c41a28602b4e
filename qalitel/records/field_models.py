"""Tenant-managed lists (products, processes, customers, suppliers) and the structured cause
analysis of a record (:mod:`qalitel.records.fields`). The record's own new columns are in
:mod:`qalitel.records.models`. Decimals are written plainly (``12.5``, ``1234.50``) in forms,
the history and CSV files (:func:`plain_number`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from tenants.schema import TenantBase

CATALOG_KINDS = ("product", "process", "customer", "supplier")
ITEM_KINDS = ("product", "process")
PARTY_KINDS = ("customer", "supplier")
CAUSE_CATEGORIES = ("method", "machine", "material", "manpower", "measurement", "environment")
WHY_STEPS = 5
CATALOG_NAME_MAX = 100
LOT_MAX = 60
UNIT_MAX = 20
STEP_MAX = 1000
BRANCH_MAX = 2000
QUANTITY_MAX = Decimal("999999999.999")
COST_MAX = Decimal("99999999.99")
COST_CURRENCY = "EUR"

WHY_FIELDS = tuple(f"{part}_{i}" for i in range(1, WHY_STEPS + 1) for part in ("why", "because"))
ISHIKAWA_FIELDS = tuple(f"ishikawa_{c}" for c in CAUSE_CATEGORIES)
ANALYSIS_FIELDS = (*WHY_FIELDS, *ISHIKAWA_FIELDS, "main_cause")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class FixedDecimal(TypeDecorator):
    """A decimal stored exactly as an integer count of ``10**-scale`` (cents for money), so
    sums are exact on both backends (SQLite has no decimal type)."""

    impl = BigInteger
    cache_ok = True
    exact_decimal = True  # exports write and read it as a decimal string

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        return int(Decimal(str(value)).scaleb(self.scale).to_integral_value())

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-self.scale)


class CatalogEntry(TenantBase):
    """One entry of a tenant-managed list; archived entries stay on the records naming them."""

    __tablename__ = "catalog_entries"
    __table_args__ = (
        CheckConstraint(_in("kind", CATALOG_KINDS), name="kind"),
        UniqueConstraint("kind", "name", name="uq_catalog_entries_kind_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    name: Mapped[str] = mapped_column(String(CATALOG_NAME_MAX), nullable=False)
    archived: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False,
                                           server_default=false())
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)


class RecordAnalysis(TenantBase):
    """The structured cause analysis of one record: 5 Whys, Ishikawa (6M), main cause."""

    __tablename__ = "nonconformity_analyses"
    #: What search reads (folded into ``search_text`` by :mod:`qalitel.records.search`); a
    #: record is found by its analysis' text as by its actions'.
    SEARCHED: ClassVar[tuple[str, ...]] = (*WHY_FIELDS, *ISHIKAWA_FIELDS)
    __table_args__ = (
        CheckConstraint(f"main_cause IS NULL OR {_in('main_cause', CAUSE_CATEGORIES)}",
                        name="main_cause"),
    )

    record_id: Mapped[int] = mapped_column(
        ForeignKey("nonconformities.id", ondelete="CASCADE"), primary_key=True)
    why_1: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    because_1: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    why_2: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    because_2: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    why_3: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    because_3: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    why_4: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    because_4: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    why_5: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    because_5: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    ishikawa_method: Mapped[str] = mapped_column(Text, nullable=False, default="",
                                                 server_default="")
    ishikawa_machine: Mapped[str] = mapped_column(Text, nullable=False, default="",
                                                  server_default="")
    ishikawa_material: Mapped[str] = mapped_column(Text, nullable=False, default="",
                                                   server_default="")
    ishikawa_manpower: Mapped[str] = mapped_column(Text, nullable=False, default="",
                                                   server_default="")
    ishikawa_measurement: Mapped[str] = mapped_column(Text, nullable=False, default="",
                                                      server_default="")
    ishikawa_environment: Mapped[str] = mapped_column(Text, nullable=False, default="",
                                                      server_default="")
    main_cause: Mapped[str | None] = mapped_column(String(20), index=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)
    search_text: Mapped[str] = mapped_column(Text, nullable=False, default="",
                                             server_default="")


def plain_number(value: Decimal | None, places: int | None = None) -> str:
    if value is None:
        return ""
    if places is not None:
        return format(value.quantize(Decimal(1).scaleb(-places)), "f")
    return format(value.normalize(), "f")
