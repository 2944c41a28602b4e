"""A tenant as a phone shows it at its worst: long titles, an unbroken URL, long names and
e-mail addresses, a confidential folder, overdue actions, an attached file with a long name,
backups, a pending and an approved maintenance request by an engineer with a long address.
Built once for the small-screen tests (they only read)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask import Flask

from tests.conftest import StaffHandle, grant_for_test, in_tenant, make_staff, provision

SLUG = "longuenom"
LONG_URL = ("https://portail-fournisseurs.example.com/reclamations/2026/11/"
            "NC-000123456789?lot=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
LONG_WORD = "Qualitätssicherungsmaßnahmendokumentationsanforderungenüberprüfung"
LONG_EMAIL = ("marie-christine.de-la-tour-dauvergne-lauraguais"
              "@qualite-fournisseurs-longuenom.example")
LONG_NAME = "Marie-Christine de La Tour d'Auvergne-Lauraguais"
STAFF_EMAIL = "jean-baptiste.engineer-on-call-maintenance@scoqi-support-longuenom.example"


@dataclass
class SmallWorld:
    app: Flask
    admin_email: str
    user_email: str
    staff: StaffHandle
    records: dict[str, int] = field(default_factory=dict)
    actions: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    folders: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    grant_id: int = 0
    request_id: str = ""


def build_small_world(app: Flask, password_hash: str) -> SmallWorld:
    from qalitel.records import service
    from qalitel.records.files.service import attach
    from qalitel.records.models import Folder, NonConformity
    from qalitel.users.models import Group, Profile, User, UserGroup

    app.config["MAIL_BACKGROUND"] = False  # no mail server: sends fail in the request, logged
    handle = provision(app, SLUG, password_hash, records=0,
                       name="Établissements Longuenom et Fils, Fonderie de Précision")
    staff = make_staff(app, STAFF_EMAIL, "Jean-Baptiste Engineer-On-Call")
    world = SmallWorld(app=app, admin_email=handle.admin_email, user_email=LONG_EMAIL,
                       staff=staff)
    with in_tenant(app, SLUG) as session:
        user = User(email=LONG_EMAIL, name=LONG_NAME, password_hash=password_hash,
                    profile=Profile.USER)
        manager = User(email="quality.manager-responsable-qualite@longuenom.example",
                       name="Responsable Qualité Fournisseurs", password_hash=password_hash,
                       profile=Profile.MANAGER)
        group = Group(name="Équipe qualité fournisseurs et réclamations clients")
        folder = Folder(name="Réclamations clients — sites de Montbéliard et Sochaux")
        secret = Folder(name="Ressources humaines (confidentiel)", confidential=True)
        session.add_all([user, manager, group, folder, secret])
        session.flush()
        session.add(UserGroup(user_id=user.id, group_id=group.id))
        session.commit()
        world.users = {"user": user.id, "manager": manager.id,
                       "admin": handle.user_ids["admin"]}
        world.groups = {"quality": group.id}
        world.folders = {"claims": folder.id, "hr": secret.id}
        admin = session.get(User, handle.user_ids["admin"])
        for i in range(14):
            record = service.create_nonconformity(
                admin, f"Réclamation client n°{i} : bavures sur carter de pompe, lot {LONG_URL}"
                if i % 3 == 0 else f"{LONG_WORD} {i} — écart de cote sur alésage Ø 42 H7",
                f"Constaté au contrôle d'entrée. Voir {LONG_URL}\n{LONG_WORD}",
                severity=("minor", "major", "critical")[i % 3],
                folder_id=folder.id if i % 2 else None, assignee_id=user.id,
                cause_analysis=f"5 pourquoi : {LONG_WORD}")
            world.records.setdefault("first", record.id)
            world.records["last"] = record.id
        first = session.get(NonConformity, world.records["first"])
        for i in range(4):
            action = service.create_action(
                admin, f"Action corrective {i} : {LONG_WORD} et mise à jour de la gamme",
                record=first if i < 3 else None, owner_id=user.id,
                description=f"Suivre {LONG_URL}",
                due_date=date.today() + timedelta(days=(-5 if i % 2 else 12)))
            world.actions.setdefault("first", action.id)
        attach(admin, first, io.BytesIO(b"Mesure : 12,5 mm\n"),
               f"rapport-de-controle-{LONG_WORD}-{'x' * 40}.txt")
        session.commit()
    add_backups(app, handle.uid)
    with app.app_context():
        from core.db import db
        from maintenance.models import StaffUser
        from maintenance.requests import create_request

        engineer = db.session.get(StaffUser, staff.id)
        reason = f"Les totaux du tableau de bord sont faux, voir {LONG_URL}"
        approved = create_request(SLUG, engineer, reason, ticket="SUP-2026-000123", hours=2)
        create_request(SLUG, engineer, reason + " (second)", ticket="SUP-2026-000124", hours=1)
        world.request_id = approved.public_id
    world.grant_id = grant_for_test(app, world.request_id,
                                    approver=("Admin longuenom", handle.admin_email))
    return world


def add_backups(app: Flask, uid: str) -> None:
    from backups.models import Backup, BackupCopy, BackupStatus, CopyStatus
    from core import clock
    from core.db import db

    targets = ["/srv/backups/qalitel-primary-storage-array", "s3://qalitel-backups-eu-west/host"]
    with app.app_context():
        now = clock.now()
        for i, status in enumerate((BackupStatus.COMPLETE, BackupStatus.PARTIAL)):
            backup = Backup(tenant_uid=uid, tenant_slug=SLUG, backend="sqlite", status=status,
                            started_at=now - timedelta(hours=i + 1), size=123_456_789,
                            sha256="0" * 64, key=f"{SLUG}/{i}")
            for target in targets:
                backup.copies.append(BackupCopy(
                    target=target, status=CopyStatus.OK, written_at=backup.started_at,
                    check_result="ok"))
            db.session.add(backup)
        db.session.commit()
