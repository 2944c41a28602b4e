"""The login history: one row per sign-in attempt on a known account (see
:mod:`qalitel.my_data.models` for what is kept of the address and why)."""

from __future__ import annotations

import ipaddress

from flask import request

from qalitel.my_data.models import ADDRESS_MAX, AGENT_MAX, LoginEvent, LoginOutcome
from tenants.context import tdb


def truncate_address(raw: str | None) -> str | None:
    """``203.0.113.57`` → ``203.0.113.0/24``; an IPv6 address → its /64; None if unreadable."""
    try:
        address = ipaddress.ip_address((raw or "").strip())
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))[:ADDRESS_MAX]


def _agent() -> str | None:
    agent = request.headers.get("User-Agent", "")
    cleaned = "".join(c for c in agent if c.isprintable()).strip()
    return cleaned[:AGENT_MAX] or None


def _values(user_id: int, outcome: LoginOutcome) -> dict[str, object]:
    return {"user_id": user_id, "outcome": outcome,
            "address": truncate_address(request.remote_addr), "user_agent": _agent()}


def record_success(user_id: int) -> None:
    """Part of the sign-in's transaction: saved with it."""
    tdb.add(LoginEvent(**_values(user_id, LoginOutcome.SUCCESS)))
    tdb.flush()


def record_failure(user_id: int) -> None:
    """Committed at once, on the request's own session (no second connection: the pool is
    sized for one per request): the refused sign-in's answer is an error, which rolls the
    request's transaction back, and the attempt must stay on record. A refused sign-in has
    changed nothing else, so this commit holds the event only."""
    from qalitel.transaction import commit

    tdb.add(LoginEvent(**_values(user_id, LoginOutcome.FAILURE)))
    commit()
