"""The jobs' two platform tables: one lease row per lock name, one ledger row per run."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import db, value_enum


class Outcome(enum.StrEnum):
    RUNNING = "running"  # started; a holder that died leaves it until the next run takes over
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # due, but another process held its lock


class JobLock(db.Model):
    """A lease: ``holder`` may work under ``name`` until ``expires_at`` (renewed meanwhile)."""

    __tablename__ = "job_locks"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), nullable=False)
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class JobRun(db.Model):
    """The ledger: one row per attempt of a job, on whichever host."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    holder: Mapped[str] = mapped_column(String(200), nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[Outcome] = mapped_column(value_enum(Outcome), nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
