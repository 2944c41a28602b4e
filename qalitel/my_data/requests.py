"""Erasure requests: a user asks, a client admin approves or refuses, the user is told.

Services flush; the request commits once. The outcome mail leaves after the commit, in the
user's language; on approval it goes to the address the person had before the erasure.
The ledger row (platform database) is committed early, *before* the tenant transaction
that erases (the two databases have no common commit): if the tenant commit then fails, the
ledger names a person whose erasure was approved but not applied, and the next restore, or
a new approval, erases them; the other order could lose the ledger row, and a restore would
bring the person back.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from core import config, mail, platform_transaction, validation
from core.db import db
from maintenance import client_erasure
from qalitel import transaction
from qalitel.i18n import DEFAULT as DEFAULT_LOCALE
from qalitel.my_data.erasure import (
    erase,
    is_tombstone,
    new_code,
    pseudonym_name,
    tombstone_email,
)
from qalitel.my_data.export_request import forget_exports
from qalitel.my_data.ledger import Erasure, person_keys
from qalitel.my_data.models import REASON_MAX, ErasureRequest, ErasureState
from qalitel.users.models import User
from qalitel.users.service import UserError, ensure_an_admin_remains
from tenants.context import current_tenant, tdb


def pending_for(user: User) -> ErasureRequest | None:
    return tdb.execute(select(ErasureRequest).where(
        ErasureRequest.user_id == user.id, ErasureRequest.state == ErasureState.PENDING)
    ).scalars().first()


def latest_for(user: User) -> ErasureRequest | None:
    return tdb.execute(select(ErasureRequest).where(ErasureRequest.user_id == user.id)
                       .order_by(ErasureRequest.id.desc()).limit(1)).scalars().first()


def request_erasure(user: User) -> ErasureRequest:
    """Record ``user``'s request to be erased; a second one while one is pending is refused."""
    if pending_for(user) is not None:
        raise UserError(_("You already asked for the deletion of your account: an "
                          "administrator will decide."))
    request = ErasureRequest(user_id=user.id, state=ErasureState.PENDING)
    tdb.add(request)
    tdb.flush()
    return request


def pending() -> list[tuple[ErasureRequest, User]]:
    rows = tdb.execute(select(ErasureRequest, User).join(User, User.id == ErasureRequest.user_id)
                       .where(ErasureRequest.state == ErasureState.PENDING)
                       .order_by(ErasureRequest.requested_at, ErasureRequest.id))
    return [(request, user) for request, user in rows]


def get_pending(request_id: object) -> ErasureRequest | None:
    request_id = validation.id_or_none(request_id)
    if request_id is None:
        return None
    request = tdb.get(ErasureRequest, request_id, with_for_update=True)
    return request if request is not None and request.state is ErasureState.PENDING else None


def _outcome_mail(email: str, name: str, locale: str | None, approved: bool,
                  reason: str) -> None:
    company = current_tenant().name
    with force_locale(locale or DEFAULT_LOCALE):
        if approved:
            subject = _("Your QALITEL account at %(company)s is deleted", company=company)
        else:
            subject = _("Your request to delete your QALITEL account at %(company)s is "
                        "refused", company=company)
        body = render_template("mail/erasure_decision.txt", name=name, company=company,
                               approved=approved, reason=reason)
    message = mail.build_message(config.settings(), email, subject, body)
    transaction.after_commit(lambda: mail.deliver(message))


def decide(request: ErasureRequest, admin: User, approve: bool, reason: str = "") -> None:
    """Approve (erase the person) or refuse a pending request; the user is mailed after the
    commit. The last active administrator cannot be erased."""
    try:
        reason = validation.check_text(reason, REASON_MAX)
    except validation.InvalidInput as exc:
        raise UserError(str(exc)) from exc
    person = tdb.get(User, request.user_id)
    if person is None or is_tombstone(person):
        raise UserError(_("This account no longer exists."))
    email, name, locale = person.email, person.name, person.locale
    if approve:
        ensure_an_admin_remains(person)
    now = datetime.now(UTC)
    request.state = ErasureState.APPROVED if approve else ErasureState.REFUSED
    request.decided_by_id = admin.id
    request.decided_at = now
    request.reason = reason
    if approve:
        tenant = current_tenant()
        keys = person_keys(tenant.uid, person.id, person.uid)
        recorded = db.session.execute(select(Erasure).where(
            Erasure.tenant_uid == tenant.uid, Erasure.person_key.in_(keys))).scalar()
        code = (recorded.pseudonym if recorded is not None
                else new_code(config.settings().secret_key, tenant.uid, person.id))
        erase(person, code)
        tdb.flush()
        forget_exports(person.id)
        if recorded is None:  # else: approved before, but that tenant commit failed
            db.session.add(Erasure(tenant_uid=tenant.uid, tenant_user_id=person.id,
                                   person_key=keys[0], pseudonym=code, erased_at=now))
        client_erasure.pseudonymise_client_admin(tenant.id, email, pseudonym_name(code),
                                                 tombstone_email(code))
        platform_transaction.commit()
    tdb.flush()
    _outcome_mail(email, name, locale, approve, reason)
