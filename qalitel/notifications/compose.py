"""The mail of one notification: subject and body from ``templates/mail/notify_*.txt``, in the
recipient's language, with links built from ``QALITEL_EXTERNAL_URL`` only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from email.message import EmailMessage

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from core import dates, mail
from core.config import Settings
from core.links import tenant_link
from qalitel.i18n import LANGUAGES
from qalitel.notifications.models import Kind, Notification
from qalitel.records import visibility
from qalitel.records.models import ACTION_CLOSED, FINAL_STATUSES, Action, NonConformity
from qalitel.users.models import User
from tenants.context import current_tenant, tdb

DIGEST_DAYS = 10
"""A digest lists the open actions due within this many days, and the overdue ones."""


def recipient_locale(user: User) -> str:
    default = current_app.config.get("BABEL_DEFAULT_LOCALE", "fr")
    return user.locale if user.locale in LANGUAGES else default


def link(path: str, settings: Settings) -> str:
    return tenant_link(settings, current_tenant().slug, path)


def action_link(action: Action, settings: Settings) -> str:
    return link(f"/actions/{action.id}", settings)


def record_link(record: NonConformity, settings: Settings) -> str:
    return link(f"/records/{record.id}", settings)


@dataclass
class Digest:
    actions: list[Action]
    records: list[NonConformity]

    def __bool__(self) -> bool:
        return bool(self.actions or self.records)


def digest_of(user: User, today: date) -> Digest:
    """The user's open actions due within :data:`DIGEST_DAYS` or overdue, and the open
    records assigned to them, as far as they may see them."""
    actions = tdb.execute(select(Action).where(
        Action.owner_id == user.id, Action.status.notin_(ACTION_CLOSED),
        Action.due_date.is_not(None), Action.due_date <= today + timedelta(DIGEST_DAYS),
        visibility.action_visibility(user)).order_by(Action.due_date, Action.id)).scalars()
    records = tdb.execute(select(NonConformity).where(
        NonConformity.assignee_id == user.id, NonConformity.status.notin_(FINAL_STATUSES),
        visibility.record_visibility(user)).order_by(NonConformity.number)).scalars()
    return Digest(list(actions), list(records))


def _subject(kind: str, company: str, target: Action | NonConformity | None) -> str:
    if kind == Kind.DIGEST:
        return _("%(company)s: your week in QALITEL", company=company)
    if isinstance(target, NonConformity):
        return _("%(company)s: %(reference)s is assigned to you", company=company,
                 reference=target.reference)
    title = target.title if target is not None else ""
    if kind == Kind.ASSIGNMENT:
        return _("%(company)s: action assigned to you: %(title)s", company=company,
                 title=title)
    if kind == Kind.DUE_SOON:
        return _("%(company)s: action due soon: %(title)s", company=company, title=title)
    return _("%(company)s: action overdue: %(title)s", company=company, title=title)


def build(settings: Settings, note: Notification, user: User,
          target: Action | NonConformity | None, today: date,
          digest: Digest | None = None) -> tuple[str, EmailMessage]:
    """(subject, message) of ``note`` for ``user``, in their language."""
    company = current_tenant().name
    with force_locale(recipient_locale(user)):
        subject = _subject(note.kind, company, target)
        values: dict = {"user": user, "company": company, "kind": note.kind}
        if isinstance(target, Action):
            values.update(action=target, link=action_link(target, settings),
                          due=dates.date_text(target.due_date) if target.due_date else None,
                          days=(target.due_date - today).days if target.due_date else None)
        elif isinstance(target, NonConformity):
            values.update(record=target, link=record_link(target, settings))
        if digest is not None:
            values.update(
                days=DIGEST_DAYS, records=[(r, record_link(r, settings)) for r in digest.records],
                actions=[(a, action_link(a, settings), dates.date_text(a.due_date),
                          a.due_date < today) for a in digest.actions])
        template = "mail/notify_digest.txt" if note.kind == Kind.DIGEST else \
            f"mail/notify_{note.kind}.txt"
        body = render_template(template, **values)
    return subject, mail.build_message(settings, user.email, subject, body)
