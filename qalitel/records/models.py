"""Quality records of one client company: non-conformities, actions, folders.

Enumerations are stored as short strings, checked by the database (``CheckConstraint``)
as well as by the forms, so a value outside the lists below can never be saved.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import ClassVar

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core import dates
from qalitel.records.field_models import (
    LOT_MAX,
    UNIT_MAX,
    CatalogEntry,
    FixedDecimal,
)
from qalitel.users.models import User
from tenants.schema import TenantBase

STATUSES = ("open", "analysis", "treatment", "verification", "closed", "unfounded")
FINAL_STATUSES = ("closed", "unfounded")
"""Outcomes: a record there is read-only until it is reopened."""
ORIGINS = ("internal", "customer", "supplier", "audit")
SEVERITIES = ("minor", "major", "critical")
ACTION_KINDS = ("immediate", "corrective", "preventive")
ACTION_STATUSES = ("planned", "in_progress", "done", "cancelled")
ACTION_CLOSED = ("done", "cancelled")

# The workflow: from each status, the statuses a record may move to next.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("analysis", "unfounded"),
    "analysis": ("treatment", "unfounded"),
    "treatment": ("verification",),
    "verification": ("closed", "treatment"),
    "closed": (),
    "unfounded": (),
}
# Reopening leaves an outcome for the step where the work resumes.
REOPEN_TO = {"closed": "treatment", "unfounded": "analysis"}

# Who may make each move is a rule of the tenant (:class:`WorkflowRule`); "reopen" stands
# for leaving an outcome. Managers (and admins) always keep the outcomes and reopening.
WORKFLOW_STEPS = ("analysis", "treatment", "verification", "closed", "unfounded", "reopen")
WORKFLOW_ROLES = ("assignee", "manager")
MANAGER_STEPS = ("closed", "unfounded", "reopen")
DEFAULT_RULES: dict[str, tuple[str, ...]] = {
    "analysis": WORKFLOW_ROLES, "treatment": WORKFLOW_ROLES, "verification": WORKFLOW_ROLES,
    "closed": ("manager",), "unfounded": ("manager",), "reopen": ("manager",)}

TITLE_MAX = 200
TEXT_MAX = 20000
COMMENT_MAX = 2000
FOLDER_NAME_MAX = 100


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _today() -> date:
    return dates.today()


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Folder(TenantBase):
    """A folder grouping records; a confidential one is visible to cleared managers only.

    Names are unique among the folders one person sees (checked by the service), not
    globally: a global rule would tell an uncleared manager that a confidential name exists."""

    __tablename__ = "folders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(FOLDER_NAME_MAX), nullable=False)
    confidential: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False,
                                               server_default=false())
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)


class FolderClearance(TenantBase):
    """Clearance of one user, or of every member of one group, for a confidential folder."""

    __tablename__ = "folder_clearances"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (group_id IS NULL)", name="user_xor_group"),
        UniqueConstraint("folder_id", "user_id", name="uq_folder_clearances_folder_user"),
        UniqueConstraint("folder_id", "group_id", name="uq_folder_clearances_folder_group"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"),
                                           nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                                index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"),
                                                 index=True)
    granted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    granted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)


class NonConformity(TenantBase):
    __tablename__ = "nonconformities"
    __table_args__ = (
        CheckConstraint(_in("status", STATUSES), name="status"),
        CheckConstraint(_in("origin", ORIGINS), name="origin"),
        CheckConstraint(_in("severity", SEVERITIES), name="severity"),
        Index("ix_nonconformities_status_number", "status", "number"),
        # Covers the visibility clause (id included for PostgreSQL's index-only scans), so
        # counting what someone sees reads this index, not the table; folder filters use
        # its prefix.
        Index("ix_nonconformities_visibility", "folder_id", "detected_by_id", "assignee_id",
              "created_by_id", "id"),
    )

    #: What search reads (folded into ``search_text`` by :mod:`qalitel.records.search`).
    SEARCHED: ClassVar[tuple[str, ...]] = ("title", "description", "cause_analysis", "lot",
                                            "immediate_action")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True, nullable=False)
    title: Mapped[str] = mapped_column(String(TITLE_MAX), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="open")
    detected_on: Mapped[date] = mapped_column(Date, nullable=False, default=_today,
                                              server_default=func.current_date(), index=True)
    detected_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    origin: Mapped[str] = mapped_column(String(20), nullable=False, default="internal",
                                        server_default="internal")
    severity: Mapped[str] = mapped_column(String(20), nullable=False, default="minor",
                                          server_default="minor", index=True)
    folder_id: Mapped[int | None] = mapped_column(ForeignKey("folders.id", ondelete="RESTRICT"))
    cause_analysis: Mapped[str] = mapped_column(Text, nullable=False, default="",
                                                server_default="")
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=_utcnow, nullable=False)
    search_text: Mapped[str] = mapped_column(Text, nullable=False, default="",
                                             server_default="")

    detected_by: Mapped[User | None] = relationship(foreign_keys=[detected_by_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    folder: Mapped[Folder | None] = relationship()

    # -- record fields (qalitel.records.fields): what, which lot, how many, for whom, cost
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("catalog_entries.id", ondelete="RESTRICT"), index=True)
    lot: Mapped[str] = mapped_column(String(LOT_MAX), nullable=False, default="",
                                     server_default="")
    quantity: Mapped[Decimal | None] = mapped_column(FixedDecimal(3))
    quantity_unit: Mapped[str] = mapped_column(String(UNIT_MAX), nullable=False, default="",
                                               server_default="")
    partner_id: Mapped[int | None] = mapped_column(
        ForeignKey("catalog_entries.id", ondelete="RESTRICT"), index=True)
    immediate_action: Mapped[str] = mapped_column(Text, nullable=False, default="",
                                                  server_default="")
    nq_cost: Mapped[Decimal | None] = mapped_column(FixedDecimal(2))
    product: Mapped[CatalogEntry | None] = relationship(foreign_keys=[product_id])
    partner: Mapped[CatalogEntry | None] = relationship(foreign_keys=[partner_id])
    # -- end of record fields

    @property
    def reference(self) -> str:
        return f"NC-{self.number}"

    @property
    def next_statuses(self) -> tuple[str, ...]:
        return TRANSITIONS.get(self.status, ())

    @property
    def is_final(self) -> bool:
        """Closed or unfounded: read-only until reopened."""
        return self.status in FINAL_STATUSES


class StatusChange(TenantBase):
    """One step of a record's workflow: who moved it, from what, to what, when; with the
    written justification a closure without proven effectiveness, an unfounded outcome and
    a reopening require."""

    __tablename__ = "nonconformity_status_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(
        ForeignKey("nonconformities.id", ondelete="CASCADE"), nullable=False, index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20), nullable=False)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                      index=True)
    changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)
    comment: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    justification: Mapped[str | None] = mapped_column(Text)

    changed_by: Mapped[User | None] = relationship()

    @property
    def is_reopening(self) -> bool:
        return self.from_status in FINAL_STATUSES


class WorkflowRule(TenantBase):
    """One profile allowed to make one move of the workflow (:data:`WORKFLOW_STEPS`): a row
    per (move, role). A move without any row follows :data:`DEFAULT_RULES`."""

    __tablename__ = "workflow_rules"
    __table_args__ = (
        CheckConstraint(_in("to_status", WORKFLOW_STEPS), name="to_status"),
        CheckConstraint(_in("allowed", WORKFLOW_ROLES), name="allowed"),
    )

    to_status: Mapped[str] = mapped_column(String(20), primary_key=True)
    allowed: Mapped[str] = mapped_column(String(20), primary_key=True)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)


class RecordShare(TenantBase):
    """A record shared with a user, who may then read it."""

    __tablename__ = "nonconformity_shares"

    record_id: Mapped[int] = mapped_column(
        ForeignKey("nonconformities.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True, index=True)
    shared_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    shared_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class RecordHistory(TenantBase):
    """One changed field of a record: who, when, old and new value (as displayed)."""

    __tablename__ = "nonconformity_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(
        ForeignKey("nonconformities.id", ondelete="CASCADE"), nullable=False, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                index=True)
    changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)
    field: Mapped[str] = mapped_column(String(40), nullable=False)
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    # For a folder change: the folders' ids, so their names are shown only to the cleared.
    old_ref: Mapped[int | None] = mapped_column(Integer)
    new_ref: Mapped[int | None] = mapped_column(Integer)

    user: Mapped[User | None] = relationship()


class Action(TenantBase):
    """An immediate, corrective or preventive action, linked to a record or standalone."""

    __tablename__ = "actions"
    __table_args__ = (
        CheckConstraint(_in("kind", ACTION_KINDS), name="kind"),
        CheckConstraint(_in("status", ACTION_STATUSES), name="status"),
        Index("ix_actions_status_due_date", "status", "due_date"),
    )

    #: What search reads (folded into ``search_text`` by :mod:`qalitel.records.search`).
    SEARCHED: ClassVar[tuple[str, ...]] = ("title", "description")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int | None] = mapped_column(
        ForeignKey("nonconformities.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False, default="corrective")
    title: Mapped[str] = mapped_column(String(TITLE_MAX), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                 index=True)
    due_date: Mapped[date | None] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="planned")
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    effectiveness_checked_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    effectiveness_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    effective: Mapped[bool | None] = mapped_column(Boolean)
    effectiveness_comment: Mapped[str] = mapped_column(Text, nullable=False, default="",
                                                       server_default="")
    # The planned check: when, and what will prove the action worked.
    effectiveness_due_on: Mapped[date | None] = mapped_column(Date)
    effectiveness_criteria: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=_utcnow, nullable=False)
    search_text: Mapped[str] = mapped_column(Text, nullable=False, default="",
                                             server_default="")

    record: Mapped[NonConformity | None] = relationship()
    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    effectiveness_checked_by: Mapped[User | None] = relationship(
        foreign_keys=[effectiveness_checked_by_id])

    @property
    def is_overdue(self) -> bool:
        return (self.due_date is not None and self.due_date < _today()
                and self.status not in ACTION_CLOSED)

    @property
    def check_overdue(self) -> bool:
        """The effectiveness check was planned before today and is not recorded yet (the
        same rule as :func:`qalitel.records.queries.overdue_check`)."""
        return (self.effectiveness_due_on is not None and self.effectiveness_due_on < _today()
                and self.effective is None and self.status != "cancelled")
