"""Backups seen by people, on both backends: the client admins' history page (this tenant's
rows only, sizes, targets by label, verified state, paging, French plurals), the staff
console's backup health (overdue tenants highlighted, with a moved clock), and the privacy
page's window from configuration."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from core.clock import ManualClock, set_clock
from tests.backup_world import BackupWorld, make_world
from tests.conftest import in_tenant, login, make_staff, provision, staff_login

START = datetime(2030, 3, 1, 3, 0, tzinfo=UTC)
URL = "/t/{}/admin/backups/"
EN = {"Accept-Language": "en"}


def text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return re.sub(r"\s+", " ", body.replace("\u00a0", " ")).replace("&#39;", "'")


def ids_on(response) -> list[int]:
    return [int(n) for n in re.findall(r'id="backup-(\d+)"', response.get_data(as_text=True))]


@pytest.fixture
def world(make_app, backend, tmp_path, password_hash) -> BackupWorld:
    return make_world(make_app, backend, tmp_path, password_hash)


def admin_client(app, slug: str):
    client = app.test_client()
    assert login(client, slug, f"admin@{slug}.example").status_code == 302
    return client


def add_backups(app, uid: str, slug: str, rows: list[dict], targets: list[str]) -> list[int]:
    """Catalogue rows made through the models (where a real run is not the point)."""
    from backups.models import Backup, BackupCopy, BackupStatus, CopyStatus
    from core.db import db

    made = []
    with app.app_context():
        for i, row in enumerate(rows):
            status = row.get("status", BackupStatus.COMPLETE)
            backup = Backup(tenant_uid=uid, tenant_slug=slug, backend="sqlite", status=status,
                            started_at=row.get("at", START + timedelta(hours=i)),
                            size=row.get("size", 2048), sha256="0" * 64, key=f"{slug}/{i}",
                            deep_verified_at=row.get("deep_at"),
                            deep_result=row.get("deep_result"), pruned_at=row.get("pruned_at"))
            for target in targets:
                state = row.get("copies", {}).get(target, CopyStatus.OK)
                backup.copies.append(BackupCopy(
                    target=target, status=state, written_at=backup.started_at,
                    checked_at=row.get("checked_at"), check_result=row.get("check", "ok")))
            db.session.add(backup)
            db.session.flush()
            made.append(backup.id)
        db.session.commit()
    return made


# ---------------------------------------------------------------- the client admins' page


def test_admin_sees_this_tenants_real_backups_and_no_other(world, password_hash):
    provision(world.app, "other", password_hash)
    for slug in ("acme", "other", "other", "acme"):
        assert world.run("backup", "run", slug).exit_code == 0
    assert world.run("backup", "verify", "acme", "--deep").exit_code == 0
    catalogue = world.catalogue()
    client = admin_client(world.app, "acme")
    page = client.get(URL.format("acme"), headers=EN)
    assert page.status_code == 200
    assert ids_on(page) == [4, 1]  # acme's runs, newest first; other's (2, 3) never
    body = text(page)
    assert "Your data is kept for 30 days on 2 separate media." in body
    assert "the newest one with an intact copy are kept whatever their age" in body
    assert "medium 1: saved" in body and "medium 2: saved" in body
    for folder in world.media:
        assert str(folder) not in page.get_data(as_text=True)  # never the server's paths
    from qalitel.records.files.service import human_size

    with world.app.test_request_context(headers=EN):
        sizes = {b["id"]: human_size(b["size"]) for b in catalogue}
    assert sizes[4] in body and re.search(r"\d+(\.\d)? KB", sizes[4])
    assert body.count("Restored and compared: verified") == 1  # the newest one, deep
    assert "Checksums checked" in body  # the deep run checked every copy first
    assert "Complete" in body
    others = admin_client(world.app, "other")
    assert ids_on(others.get(URL.format("other"))) == [3, 2]


def test_states_of_failed_partial_pruned_damaged_and_former_targets(make_app, backend,
                                                                   tmp_path, password_hash):
    from backups.models import BackupStatus, CopyStatus

    folders = [str(tmp_path / "m1"), str(tmp_path / "m2")]
    app = make_app(backend, backup_targets=(*folders, "s3://qalitel-bak/host"))
    acme = provision(app, "acme", password_hash)
    s3 = "s3://qalitel-bak/host"
    add_backups(app, acme.uid, "acme", [
        {"status": BackupStatus.PRUNED, "pruned_at": START + timedelta(days=31),
         "copies": {t: CopyStatus.PRUNED for t in (*folders, s3)}},
        {"status": BackupStatus.FAILED, "size": None,
         "copies": {t: CopyStatus.FAILED for t in (*folders, s3)}},
        {"status": BackupStatus.PARTIAL, "copies": {folders[1]: CopyStatus.FAILED},
         "checked_at": START + timedelta(days=2), "check": "altered (SHA-256 differs)"},
        {"deep_at": START + timedelta(days=3), "deep_result": "table x: 1 rows restored"},
    ], [*folders, s3])
    add_backups(app, acme.uid, "acme", [{"at": START + timedelta(days=4)}],
                ["/srv/retired-disk", folders[0]])
    add_backups(app, acme.uid, "acme", [  # a prune that could delete one copy of two so far
        {"status": BackupStatus.PRUNING, "at": START + timedelta(days=5),
         "copies": {folders[0]: CopyStatus.PRUNED, folders[1]: CopyStatus.OK}}], folders)
    client = admin_client(app, "acme")
    page = client.get(URL.format("acme"), headers=EN)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    rows = dict(re.findall(r'<tr id="backup-(\d+)" data-status="[a-z]+">(.*?)</tr>', html,
                           re.S))
    plain = {int(k): re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", v)) for k, v in rows.items()}
    assert "Deleted on" in plain[1] and "medium 1: deleted" in plain[1]
    assert "S3: deleted" in plain[1]
    assert "Failed" in plain[2] and "No copy was made." in plain[2] and "—" in plain[2]
    assert "Partial" in plain[3] and "medium 2: failed" in plain[3]
    assert "medium 1: damaged" in plain[3] and "Checksum check failed" in plain[3]
    assert "Restore test failed" in plain[4] and "S3: saved" in plain[4]
    assert "former medium 1: saved" in plain[5] and "medium 2: not written" in plain[5]
    assert "not verified yet" in plain[5]
    assert "Being deleted" in plain[6] and "medium 1: deleted" in plain[6]
    assert {s.value for s in BackupStatus} <= set(re.findall(r'data-status="([a-z]+)"', html)
                                                  ) | {"running"}  # each state has its words
    assert "/srv/retired-disk" not in html and "qalitel-bak" not in html
    assert "on 3 separate media" in text(page)


def test_only_admins_and_the_menu_link(two_tenants):
    world = two_tenants
    from qalitel.users.models import Profile, User

    url = URL.format("alpha")
    assert world.app.test_client().get(url).status_code == 302  # to the sign-in page
    plain = world.app.test_client()
    assert login(plain, "alpha", world.a.user_email).status_code == 302
    assert plain.get(url).status_code == 403
    assert url not in plain.get("/t/alpha/").get_data(as_text=True)
    admin = admin_client(world.app, "alpha")
    assert url in admin.get("/t/alpha/").get_data(as_text=True)
    page = admin.get(url, headers=EN)
    assert page.status_code == 200 and "No backup yet." in text(page)
    # bravo's admin reaches only bravo's page; alpha's URL with bravo's cookie is refused
    bravo = admin_client(world.app, "bravo")
    assert bravo.get(url).status_code != 200
    with in_tenant(world.app, "alpha") as session:
        session.add(User(email="manager@alpha.example", name="Manager alpha",
                         password_hash=session.query(User).first().password_hash,
                         profile=Profile.MANAGER))
        session.commit()
    managed = world.app.test_client()
    assert login(managed, "alpha", "manager@alpha.example").status_code == 302
    assert managed.get(url).status_code == 403


def test_paging_and_bad_page_numbers(make_app, backend, tmp_path, password_hash):
    app = make_app(backend, backup_targets=(str(tmp_path / "a"), str(tmp_path / "b")))
    acme = provision(app, "acme", password_hash)
    bravo = provision(app, "bravo", password_hash)
    targets = [str(tmp_path / "a"), str(tmp_path / "b")]
    ours = add_backups(app, acme.uid, "acme", [{} for _ in range(30)], targets)
    theirs = add_backups(app, bravo.uid, "bravo", [{"at": START + timedelta(days=9)}] * 3,
                         targets)
    client = admin_client(app, "acme")
    first = client.get(URL.format("acme"), headers=EN)
    assert ids_on(first) == sorted(ours, reverse=True)[:25]
    assert "Page 1 of 2" in text(first) and "1–25 of 30" in text(first)
    second = client.get(URL.format("acme") + "?page=2", headers=EN)
    assert ids_on(second) == sorted(ours, reverse=True)[25:]
    for bad in ("999", "99999999999999999999", "abc", "-1", "0", "1.5", "２", ""):
        response = client.get(URL.format("acme"), query_string={"page": bad}, headers=EN)
        assert response.status_code == 200, bad
        shown = ids_on(response)
        assert shown in (ids_on(first), ids_on(second)), bad
        assert not set(shown) & set(theirs), bad
    assert ids_on(client.get(URL.format("acme") + "?page=999")) == ids_on(second)


def test_french_page_and_plural_forms(make_app, backend, tmp_path, password_hash):
    one = (str(tmp_path / "a"), str(tmp_path / "b"))
    app = make_app(backend, backup_targets=one, backup_retention_days=1)
    provision(app, "acme", password_hash)
    client = admin_client(app, "acme")
    body = text(client.get(URL.format("acme")))
    assert "Vos données sont conservées 1 jour sur 2 supports distincts." in body
    assert "Aucune sauvegarde pour l'instant." in body
    assert "la dernière dont une copie est intacte sont conservées quel que soit leur âge" in body
    english = text(client.get(URL.format("acme"), headers=EN))
    assert "Your data is kept for 1 day on 2 separate media." in english

    many = make_app(backend, backup_targets=(*one, "s3://bucket-x"), backup_retention_days=30)
    more = provision(many, "more", password_hash)
    add_backups(many, more.uid, "more", [{}], [*one, "s3://bucket-x"])
    french = text(admin_client(many, "more").get(URL.format("more")))
    assert "conservées 30 jours sur 3 supports distincts." in french
    assert "support 1 : enregistrée" in french and "S3 : enregistrée" in french
    assert "Complète" in french and "Ko" in french

    single = make_app(backend, backup_targets=(one[0],), backup_retention_days=2)
    provision(single, "solo", password_hash)
    french = text(admin_client(single, "solo").get(URL.format("solo")))
    assert "Vos données sont conservées 2 jours sur 1 support distinct." in french

    bare = make_app(backend)
    provision(bare, "bare", password_hash)
    page = admin_client(bare, "bare").get(URL.format("bare"), headers=EN)
    assert page.status_code == 200 and "Backups are not set up on this service yet." in text(page)


# ---------------------------------------------------------------- the staff console


def test_staff_console_highlights_overdue_tenants(world, password_hash):
    provision(world.app, "bravo", password_hash)
    clock = ManualClock(START)
    set_clock(world.app, clock)
    assert world.run("backup", "run", "acme").exit_code == 0
    clock.advance(hours=3)
    eve = make_staff(world.app)
    staff = world.app.test_client()
    assert staff_login(staff, world.app, eve).status_code == 302
    html = staff.get("/staff/", headers=EN).get_data(as_text=True)
    acme = re.search(r'<tr id="tenant-acme"[^>]*>(.*?)</tr>', html, re.S)
    bravo = re.search(r'<tr id="tenant-bravo"[^>]*>(.*?)</tr>', html, re.S)
    assert acme and bravo
    assert 'class="overdue"' not in acme.group(0) and "last good backup 3 hours ago" in acme[1]
    assert 'class="overdue"' in bravo.group(0) and "Overdue:" in bravo[1]
    assert "no good backup yet" in bravo[1]

    world.media[1].rename(world.media[1].with_name("unmounted"))  # the next run is partial
    clock.advance(hours=24)
    assert world.run("backup", "run", "acme").exit_code != 0
    clock.advance(minutes=1)  # 27 h since the last complete backup
    staff = world.app.test_client()
    assert staff_login(staff, world.app, eve).status_code == 302
    html = staff.get("/staff/", headers=EN).get_data(as_text=True)
    acme = re.search(r'<tr id="tenant-acme"[^>]*>(.*?)</tr>', html, re.S)
    assert acme and 'class="overdue"' in acme.group(0)
    row = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", acme[1]))
    assert "Overdue: last good backup 27 hours ago" in row
    assert "last run: partial" in row and "1 failed run since" in row
    detail = staff.get("/staff/tenants/acme", headers=EN)
    assert detail.status_code == 200
    page = detail.get_data(as_text=True)
    assert 'id="backup-health" class="overdue"' in page
    recent = page.split('id="recent-backups"')[1]
    assert recent.count("<tr data-status=") == 2
    assert 'data-status="partial"' in recent and "1/2" in recent and "2/2" in recent
    french = staff.get("/staff/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "En retard" in french and "il y a 27 heures" in french
    bravo_page = staff.get("/staff/tenants/bravo", headers=EN)
    assert bravo_page.status_code == 200 and "No backup yet." in text(bravo_page)


def test_console_without_the_hook_or_with_a_failing_one(app, password_hash):
    from maintenance.backup_health import provide_backup_health
    from qalitel import tenancy

    provision(app, "acme", password_hash)
    eve = make_staff(app)
    staff = app.test_client()
    assert staff_login(staff, app, eve).status_code == 302
    provide_backup_health(None)
    try:
        page = staff.get("/staff/", headers=EN)
        assert page.status_code == 200 and "no backup catalogue yet" in text(page)

        def broken(_slugs, _recent):
            raise RuntimeError("catalogue unreadable")

        provide_backup_health(broken)
        page = staff.get("/staff/", headers=EN)
        assert page.status_code == 200 and "no backup catalogue yet" in text(page)
        detail = staff.get("/staff/tenants/acme", headers=EN)
        assert detail.status_code == 200 and 'id="recent-backups"' not in text(detail)
    finally:
        provide_backup_health(tenancy.backup_health)


# ---------------------------------------------------------------- the privacy page


def test_privacy_window_follows_the_setting(make_app, backend):
    app = make_app(backend, backup_retention_days=14)
    client = app.test_client()
    french = text(client.get("/privacy"))
    assert "14 jours glissants" in french and "30 jours glissants" not in french
    assert "jusqu'à ce que de plus récentes les remplacent ou que l'entreprise quitte " \
        "QALITEL" in french
    english = text(client.get("/privacy", headers=EN))
    assert "kept for 14 rolling days on more than one storage medium" in english
    assert "the newest one with at least one intact copy) are kept whatever their age, until " \
        "newer ones replace them or the company leaves" in english
    one = make_app(backend, backup_retention_days=1)
    assert "1 jour glissant," in text(one.test_client().get("/privacy"))
