"""Files attached to non-conformities and actions, through the pages, on both backends:
upload, list, download headers, removal, history, visibility, other tenants, rollback,
destruction of the tenant."""

from __future__ import annotations

import hashlib
import os
import time
from urllib.parse import quote

import pytest

from tests.conftest import login
from tests.files_helpers import PDF, PNG, TEXT, configure, files_dir, post_form, stored, upload
from tests.records_world import build_world, client_for


@pytest.fixture
def world(app, password_hash):
    return build_world(app, password_hash)


def _page(world, key: str) -> str:
    return f"/t/{world.slug}/records/{world.records[key]}"


def _action_page(world, key: str) -> str:
    return f"/t/{world.slug}/actions/{world.actions[key]}"


def _rows(world, **where):
    from sqlalchemy import select

    from qalitel.records.files.models import Attachment
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        query = select(Attachment).filter_by(**where).order_by(Attachment.id)
        return [(a.id, a.name, a.size, a.sha256, a.kind, a.content_type, a.uploaded_by_id)
                for a in tdb.execute(query).scalars()]


def _history(world, model, **where):
    from sqlalchemy import select

    from tenants.context import tdb

    with world.app.app_context(), world.context():
        return [(h.field, h.old_value, h.new_value, h.user_id) for h in tdb.execute(
            select(model).filter_by(**where).order_by(model.id)).scalars()]


def test_upload_list_download_and_remove_on_a_record(world):
    from qalitel.records.models import RecordHistory

    client = client_for(world, "user1")
    page = _page(world, "by_user1")
    answer = upload(client, page, page + "/files", "Photo écart.png", PNG)
    assert answer.status_code == 303 and answer.headers["Location"].endswith(page)
    sha = hashlib.sha256(PNG).hexdigest()
    rows = _rows(world, record_id=world.records["by_user1"])
    assert [r[1:] for r in rows] == [("Photo écart.png", len(PNG), sha, "png", "image/png",
                                      world.users["user1"])]
    assert stored(world.app, world.handle.uid) == {f"{sha[:2]}/{sha}": PNG}
    body = client.get(page).get_data(as_text=True)
    file_url = f"{page}/files/{rows[0][0]}"
    assert "Photo écart.png" in body and file_url in body
    assert "At most 20 MB per file and 20 files. Accepted: PDF, PNG" in body

    download = client.get(file_url)
    assert download.status_code == 200 and download.data == PNG
    assert download.headers["Content-Type"] == "image/png"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote('Photo écart.png')}" in disposition
    assert "no-store" in download.headers["Cache-Control"]
    assert "sandbox" in download.headers["Content-Security-Policy"]

    past = time.time() - 7200  # an upload older than the grace period
    blob = files_dir(world.app, world.handle.uid) / sha[:2] / sha
    os.utime(blob, (past, past))
    answer = post_form(client, page, f"{file_url}/remove")
    assert answer.status_code == 303
    assert _rows(world, record_id=world.records["by_user1"]) == []
    assert stored(world.app, world.handle.uid) == {}
    assert client.get(file_url).status_code == 404
    files = [h for h in _history(world, RecordHistory, record_id=world.records["by_user1"])
             if h[0] == "file"]
    assert files == [("file", None, "Photo écart.png", world.users["user1"]),
                     ("file", "Photo écart.png", None, world.users["user1"])]


def test_shared_content_stays_while_a_row_refers_to_it(world):
    client = client_for(world, "manager1")
    first, second = _page(world, "other"), _page(world, "by_user1")
    assert upload(client, first, first + "/files", "a.pdf", PDF).status_code == 303
    assert upload(client, second, second + "/files", "b.pdf", PDF).status_code == 303
    sha = hashlib.sha256(PDF).hexdigest()
    assert list(stored(world.app, world.handle.uid)) == [f"{sha[:2]}/{sha}"]
    blob = files_dir(world.app, world.handle.uid) / sha[:2] / sha
    past = time.time() - 7200
    os.utime(blob, (past, past))
    (file_id, *_rest), = _rows(world, record_id=world.records["other"])
    assert post_form(client, first, f"{first}/files/{file_id}/remove").status_code == 303
    assert blob.read_bytes() == PDF  # b.pdf still needs it
    (other_id, *_rest), = _rows(world, record_id=world.records["by_user1"])
    assert client.get(f"{second}/files/{other_id}").data == PDF


def test_a_fresh_upload_removed_at_once_is_swept_later(world):
    from qalitel.records.files import service
    from tenants.context import tdb

    client = client_for(world, "user1")
    page = _page(world, "by_user1")
    assert upload(client, page, page + "/files", "notes.txt", TEXT).status_code == 303
    (file_id, *_rest), = _rows(world, record_id=world.records["by_user1"])
    assert post_form(client, page, f"{page}/files/{file_id}/remove").status_code == 303
    # Removed within the grace period: an upload of the same bytes may be under way.
    assert len(stored(world.app, world.handle.uid)) == 1
    settings = world.app.extensions["qalitel_settings"]
    with world.app.app_context(), world.context():
        assert service.sweep(settings, world.handle.uid, tdb) == []
        assert service.sweep(settings, world.handle.uid, tdb, older_than_s=0) == [
            hashlib.sha256(TEXT).hexdigest()]
    assert stored(world.app, world.handle.uid) == {}


def test_a_rolled_back_upload_leaves_no_row_and_its_file_is_swept(world):
    from qalitel.records.files import service
    from tenants.context import tdb

    class Boom(Exception):
        pass

    settings = world.app.extensions["qalitel_settings"]
    import io

    with world.app.test_request_context(), pytest.raises(Boom), world.context():
        from qalitel.records.models import NonConformity

        record = tdb.get(NonConformity, world.records["by_user1"])
        service.attach(world.user("user1"), record, io.BytesIO(PDF), "report.pdf")
        raise Boom()
    assert _rows(world) == []
    assert len(stored(world.app, world.handle.uid)) == 1  # written first, unreferenced
    with world.app.app_context(), world.context():
        assert len(service.sweep(settings, world.handle.uid, tdb, older_than_s=0)) == 1
    assert stored(world.app, world.handle.uid) == {}


def test_files_of_actions_with_their_history(world):
    from qalitel.records.files.models import ActionHistory

    client = client_for(world, "manager1")
    page = _action_page(world, "standalone_manager1")
    answer = upload(client, page, page + "/files", "plan.pdf", PDF)
    assert answer.status_code == 303
    (file_id, name, size, _sha, kind, ctype, _by), = _rows(
        world, action_id=world.actions["standalone_manager1"])
    assert (name, size, kind, ctype) == ("plan.pdf", len(PDF), "pdf", "application/pdf")
    body = client.get(page).get_data(as_text=True)
    assert "plan.pdf" in body and f"{page}/files/{file_id}" in body
    download = client.get(f"{page}/files/{file_id}")
    assert download.data == PDF and download.headers["Content-Type"] == "application/pdf"
    assert post_form(client, page, f"{page}/files/{file_id}/remove").status_code == 303
    assert _history(world, ActionHistory, action_id=world.actions["standalone_manager1"]) == [
        ("file", None, "plan.pdf", world.users["manager1"]),
        ("file", "plan.pdf", None, world.users["manager1"])]
    assert "plan.pdf" in client.get(page).get_data(as_text=True)  # in the history card


def test_visibility_of_files_is_the_records(world):
    manager = client_for(world, "manager1")
    legal_page = f"/t/{world.slug}/records/{world.records['legal']}"
    admin = client_for(world, "admin")
    assert upload(admin, legal_page, legal_page + "/files", "secret.pdf", PDF).status_code == 303
    (legal_file, *_rest), = _rows(world, record_id=world.records["legal"])
    # manager1 is not cleared for the Legal folder: the record and its file are not there.
    assert manager.get(f"{legal_page}/files/{legal_file}").status_code == 404
    assert upload(manager, _page(world, "other"), legal_page + "/files", "x.pdf",
                  PDF).status_code == 404
    answer = manager.post(f"{legal_page}/files/{legal_file}/remove",
                          data={"csrf_token": _token(manager, other := _page(world, "other"))})
    assert answer.status_code == 404
    # A visible record does not lend its URL to another record's file.
    assert manager.get(f"{other}/files/{legal_file}").status_code == 404
    answer = manager.post(f"{other}/files/{legal_file}/remove",
                          data={"csrf_token": _token(manager, other)})
    assert answer.status_code == 404
    assert len(_rows(world, record_id=world.records["legal"])) == 1
    # Nor does an action.
    action = _action_page(world, "standalone_manager1")
    assert manager.get(f"{action}/files/{legal_file}").status_code == 404


def _token(client, page):
    from tests.conftest import csrf_token

    return csrf_token(client, page)


def test_who_may_read_may_download_only_editors_change(world):
    manager = client_for(world, "manager1")
    shared = _page(world, "shared_user1")  # shared with user1, who may read it only
    assert upload(manager, shared, shared + "/files", "f.png", PNG).status_code == 303
    (file_id, *_rest), = _rows(world, record_id=world.records["shared_user1"])
    reader = client_for(world, "user1")
    body = reader.get(shared).get_data(as_text=True)
    assert f"{shared}/files/{file_id}" in body and 'enctype="multipart/form-data"' not in body
    assert reader.get(f"{shared}/files/{file_id}").data == PNG
    assert upload(reader, shared, shared + "/files", "g.png", PNG).status_code == 403
    answer = reader.post(f"{shared}/files/{file_id}/remove",
                         data={"csrf_token": _token(reader, shared)})
    assert answer.status_code == 403
    assert len(_rows(world, record_id=world.records["shared_user1"])) == 1


def test_another_tenants_file_is_never_served(two_tenants):
    from sqlalchemy import select

    from qalitel.records.files.models import Attachment
    from tests.conftest import in_tenant

    a, b = two_tenants.a, two_tenants.b
    app = two_tenants.app
    alpha, bravo = app.test_client(), app.test_client()
    assert login(alpha, "alpha", a.user_email).status_code == 302
    assert login(bravo, "bravo", b.user_email).status_code == 302
    page_a = f"/t/alpha/records/{a.record_ids[0]}"
    page_b = f"/t/bravo/records/{b.record_ids[0]}"
    assert upload(alpha, page_a, page_a + "/files", "alpha.txt", b"alpha only\n").status_code \
        == 303
    with in_tenant(app, "alpha") as session:
        alpha_file = session.execute(select(Attachment.id)).scalar_one()
    # Same record id, same file id in bravo: nothing there.
    assert a.record_ids[0] == b.record_ids[0]
    assert bravo.get(f"{page_b}/files/{alpha_file}").status_code == 404
    # A signed-in alpha user asking bravo's URL is not signed in there.
    elsewhere = alpha.get(f"{page_b}/files/{alpha_file}")
    assert elsewhere.status_code == 302 and "/t/bravo/login" in elsewhere.headers["Location"]
    assert upload(bravo, page_b, page_b + "/files", "bravo.txt", b"bravo only\n").status_code \
        == 303
    with in_tenant(app, "bravo") as session:
        bravo_file = session.execute(select(Attachment.id)).scalar_one()
    assert bravo_file == alpha_file
    assert alpha.get(f"{page_a}/files/{alpha_file}").data == b"alpha only\n"
    assert bravo.get(f"{page_b}/files/{bravo_file}").data == b"bravo only\n"
    assert list(stored(app, a.uid).values()) == [b"alpha only\n"]
    assert list(stored(app, b.uid).values()) == [b"bravo only\n"]


def test_destroying_a_tenant_removes_its_files(two_tenants):
    from core.db import db
    from tenants.provisioning import destroy_tenant
    from tenants.registry import Tenant

    app = two_tenants.app
    a, b = two_tenants.a, two_tenants.b
    for handle in (a, b):
        client = app.test_client()
        assert login(client, handle.slug, handle.user_email).status_code == 302
        page = f"/t/{handle.slug}/records/{handle.record_ids[0]}"
        assert upload(client, page, page + "/files", "r.pdf", PDF).status_code == 303
    assert files_dir(app, a.uid).exists()
    with app.app_context():
        destroy_tenant(app.extensions["qalitel_settings"],
                       db.session.query(Tenant).filter_by(slug="alpha").one())
    assert not files_dir(app, a.uid).exists()
    assert list(stored(app, b.uid).values()) == [PDF]


def test_configured_count_limit(world):
    configure(world.app, file_max_count=2)
    client = client_for(world, "user1")
    page = _page(world, "by_user1")
    for name in ("1.png", "2.png"):
        assert upload(client, page, page + "/files", name, PNG).status_code == 303
    answer = upload(client, page, page + "/files", "3.png", PNG)
    assert answer.status_code == 400 and "At most 2 files" in answer.get_data(as_text=True)
    assert len(_rows(world)) == 2


def test_sweep_command_removes_old_unreferenced_files(world):
    import io
    import json

    from qalitel.records.files.service import tenant_store

    client = client_for(world, "user1")
    page = _page(world, "by_user1")
    assert upload(client, page, page + "/files", "kept.pdf", PDF).status_code == 303
    with world.app.app_context(), world.context():
        store = tenant_store(world.app.extensions["qalitel_settings"])
        orphan = store.commit(store.stage(io.BytesIO(PNG), max_bytes=10**6))
    past = time.time() - 7200
    for path in files_dir(world.app, world.handle.uid).rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))
    runner = world.app.test_cli_runner()
    result = runner.invoke(args=["files", "sweep", world.slug, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"removed": {world.slug: 1}}
    assert not orphan.exists()
    assert list(stored(world.app, world.handle.uid).values()) == [PDF]
    result = runner.invoke(args=["files", "sweep", "--all"])
    assert result.exit_code == 0 and f"{world.slug}: 0 unreferenced" in result.output
    for args in (["files", "sweep"], ["files", "sweep", "nosuch"], ["files", "sweep", "Bad/"],
                 ["files", "sweep", world.slug, "--all"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 1 and "Error:" in result.output, (args, result.output)


def test_html_is_served_as_plain_text_never_as_a_page(world):
    client = client_for(world, "user1")
    page = _page(world, "by_user1")
    html = b"<html><script>alert(document.cookie)</script></html>\n"
    assert upload(client, page, page + "/files", "page.html", html).status_code == 303
    (file_id, _name, _size, _sha, kind, ctype, _by), = _rows(
        world, record_id=world.records["by_user1"])
    assert (kind, ctype) == ("text", "text/plain; charset=utf-8")
    download = client.get(f"{page}/files/{file_id}")
    assert download.data == html
    assert download.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
