"""Files of the background exports, beside the ``data_exports`` rows: the folder
``<instance>/exports/`` and the *inputs* a request hands to its build (``<id>.input.json``,
mode 0600, deleted once the build ends; :func:`sweep_inputs` deletes what a crash left)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.config import Settings
from core.config import settings as current_settings
from core.db import db
from qalitel.exports.models import ACTIVE_STATES, DataExport, ExportState


def exports_dir(settings: Settings) -> Path:
    folder = settings.instance_dir / "exports"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def input_path(settings: Settings, job_id: int) -> Path:
    return exports_dir(settings) / f"{job_id}.input.json"


def write_inputs(job: DataExport, inputs: Mapping[str, Any] | None) -> None:
    path = input_path(current_settings(), job.id)
    if not inputs:
        path.unlink(missing_ok=True)
        return
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(dict(inputs), handle)
    os.replace(partial, path)


def read_inputs(settings: Settings, job_id: int) -> dict[str, Any]:
    try:
        loaded = json.loads(input_path(settings, job_id).read_text())
    except FileNotFoundError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def drop_inputs(settings: Settings, job_id: int) -> None:
    input_path(settings, job_id).unlink(missing_ok=True)


def sweep_inputs(folder: Path, cutoff: float) -> None:
    """Inputs of built exports (a crash between the build and their deletion), and those
    no pending or running export needs once older than ``cutoff`` (a request whose
    transaction never committed; a retry under way is younger than that)."""
    files = {}
    for path in folder.glob("*.input.*"):
        head = path.name.split(".", 1)[0]
        if head.isdigit():
            files[path] = int(head)
    if not files:
        return
    states = dict(db.session.execute(select(DataExport.id, DataExport.state).where(
        DataExport.id.in_(set(files.values())))).all())
    db.session.rollback()
    for path, job_id in files.items():
        state = states.get(job_id)
        if state in ACTIVE_STATES:
            continue
        if state in (ExportState.READY, ExportState.EXPIRED) or path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
