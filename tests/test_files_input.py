"""Bad uploads and forged ids: each gets a clear message and a 4xx, never a 500, and
leaves nothing behind (no row, no file, no temporary part), on both backends."""

from __future__ import annotations

import pytest

from tests.files_helpers import EXE, PDF, PNG, configure, ooxml, stored, upload
from tests.records_world import build_world, client_for


@pytest.fixture
def world(app, password_hash):
    return build_world(app, password_hash)


def _page(world) -> str:
    return f"/t/{world.slug}/records/{world.records['by_user1']}"


def _count(world) -> int:
    from sqlalchemy import func, select

    from qalitel.records.files.models import Attachment
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        return tdb.execute(select(func.count()).select_from(Attachment)).scalar_one()


def _nothing_kept(world) -> bool:
    return _count(world) == 0 and stored(world.app, world.handle.uid) == {}


BAD_NAMES = {
    "../evil.png": "cannot contain",
    "../../../../etc/passwd": "cannot contain",
    "folder/evil.png": "cannot contain",
    "..": "cannot start with a dot",
    ".htaccess": "cannot start with a dot",
    "nul\x00byte.png": "forbidden character",
    "escape\x1b[31m.png": "forbidden character",
    "line\nbreak.png": "Choose a file",  # the line break ends the part's header: no file
    "right-to-left\u202egnp.exe": "forbidden character",
    "a" * 252 + ".png": "too long",
}


@pytest.mark.parametrize("name", list(BAD_NAMES), ids=range(len(BAD_NAMES)))
def test_bad_file_names_are_refused(world, name):
    client = client_for(world, "user1")
    answer = upload(client, _page(world), _page(world) + "/files", name, PNG)
    assert answer.status_code == 400
    assert BAD_NAMES[name] in answer.get_data(as_text=True)
    assert _nothing_kept(world)


def test_a_backslash_in_a_raw_multipart_name_is_refused(world):
    """Test clients drop backslashes from names; a hand-made body keeps them (escaped, as
    a quoted string must)."""
    from tests.conftest import csrf_token

    client = client_for(world, "user1")
    token = csrf_token(client, _page(world))
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"
            f"{token}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"upload\"; "
            'filename="C:\\\\Users\\\\evil.png"\r\nContent-Type: image/png\r\n\r\n'
            ).encode() + PNG + f"\r\n--{boundary}--\r\n".encode()
    answer = client.post(_page(world) + "/files", data=body,
                         content_type=f"multipart/form-data; boundary={boundary}")
    assert answer.status_code == 400
    assert "cannot contain" in answer.get_data(as_text=True)
    assert _nothing_kept(world)


def test_a_name_of_255_characters_is_kept(world):
    client = client_for(world, "user1")
    name = "é" * 251 + ".png"
    assert upload(client, _page(world), _page(world) + "/files", name, PNG).status_code == 303
    assert _count(world) == 1


@pytest.mark.parametrize(("content", "name", "message"), [
    (b"", "empty.pdf", "The file is empty."),
    (EXE, "setup.pdf", "This type of file is not accepted."),
    (ooxml("word/document.xml", macro=True), "macros.docx", "This type of file is not accepted."),
    (b"<svg onload=alert(1)>\x00", "image.svg", "This type of file is not accepted."),
])
def test_empty_and_refused_types(world, content, name, message):
    client = client_for(world, "user1")
    answer = upload(client, _page(world), _page(world) + "/files", name, content)
    assert answer.status_code == 400 and message in answer.get_data(as_text=True)
    assert _nothing_kept(world)


def test_allowed_types_come_from_configuration(world):
    configure(world.app, file_types=("pdf",))
    client = client_for(world, "user1")
    answer = upload(client, _page(world), _page(world) + "/files", "photo.png", PNG)
    assert answer.status_code == 400
    assert "Accepted: PDF." in answer.get_data(as_text=True)
    assert _nothing_kept(world)
    assert upload(client, _page(world), _page(world) + "/files", "r.pdf", PDF).status_code == 303


def test_too_large_is_refused_before_and_while_reading(world):
    from qalitel.records.files.views import FORM_OVERHEAD

    configure(world.app, file_max_bytes=1000)
    client = client_for(world, "user1")
    page = _page(world)
    exact = PDF + b" " * (1000 - len(PDF))
    assert upload(client, page, page + "/files", "exact.pdf", exact).status_code == 303
    assert _count(world) == 1
    over = exact + b" "  # within the body's allowance: refused while streaming
    answer = upload(client, page, page + "/files", "over.pdf", over)
    assert answer.status_code == 400
    assert "too large (at most 1,000 bytes)" in answer.get_data(as_text=True)
    huge = PDF + b" " * (1000 + FORM_OVERHEAD)  # past it: the body is not read
    answer = upload(client, page, page + "/files", "huge.pdf", huge)
    assert answer.status_code == 413
    assert "The file is too large (at most 1,000 bytes)" in answer.get_data(as_text=True)
    assert _count(world) == 1 and len(stored(world.app, world.handle.uid)) == 1


def test_other_pages_keep_the_apps_body_limit(world):
    configure(world.app, file_max_bytes=50 * 1024 * 1024)
    client = client_for(world, "user1")
    import io

    answer = client.post(f"/t/{world.slug}/records/new", content_type="multipart/form-data",
                         data={"title": "x", "extra": (io.BytesIO(bytes(3 * 1024 * 1024)),
                                                       "extra.bin")})
    assert answer.status_code == 413
    assert "The file is too large" not in answer.get_data(as_text=True)


def test_anonymous_uploads_keep_the_apps_body_limit(world):
    import io

    configure(world.app, file_max_bytes=50 * 1024 * 1024)
    client = world.app.test_client()
    answer = client.post(_page(world) + "/files", content_type="multipart/form-data",
                         data={"upload": (io.BytesIO(PDF + bytes(3 * 1024 * 1024)), "r.pdf")})
    assert answer.status_code == 413
    small = client.post(_page(world) + "/files", content_type="multipart/form-data",
                        data={"upload": (io.BytesIO(PDF), "r.pdf")})
    assert small.status_code == 400  # refused for its missing CSRF token
    assert _nothing_kept(world)


def test_missing_file_or_csrf_is_refused(world):
    from tests.conftest import csrf_token

    client = client_for(world, "user1")
    page = _page(world)
    answer = upload(client, page, page + "/files", "r.pdf", PDF, with_token=False)
    assert answer.status_code == 400
    answer = upload(client, page, page + "/files", "r.pdf", PDF, token="forged-token")
    assert answer.status_code == 400
    answer = client.post(page + "/files", data={"csrf_token": csrf_token(client, page)},
                         content_type="multipart/form-data")
    assert answer.status_code == 400 and "Choose a file" in answer.get_data(as_text=True)
    assert _nothing_kept(world)


@pytest.mark.parametrize("file_id", ["999999", str(2**31), str(2**63), "0", "-1", "abc"])
def test_forged_file_ids_are_not_found(world, file_id):
    from tests.conftest import csrf_token

    client = client_for(world, "user1")
    page = _page(world)
    assert upload(client, page, page + "/files", "r.pdf", PDF).status_code == 303
    assert client.get(f"{page}/files/{file_id}").status_code == 404
    answer = client.post(f"{page}/files/{file_id}/remove",
                         data={"csrf_token": csrf_token(client, page)})
    assert answer.status_code == 404
    assert _count(world) == 1


def test_removal_without_csrf_keeps_the_file(world):
    client = client_for(world, "user1")
    page = _page(world)
    assert upload(client, page, page + "/files", "r.pdf", PDF).status_code == 303
    from sqlalchemy import select

    from qalitel.records.files.models import Attachment
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        file_id = tdb.execute(select(Attachment.id)).scalar_one()
    assert client.post(f"{page}/files/{file_id}/remove").status_code == 400
    assert _count(world) == 1


def test_refusals_speak_french_by_default(world):
    from tests.conftest import login

    client = world.app.test_client()
    assert login(client, world.slug, world.emails["user1"]).status_code == 302
    configure(world.app, file_max_bytes=1536)
    answer = upload(client, _page(world), _page(world) + "/files", "vide.pdf", b"")
    assert answer.status_code == 400 and "Le fichier est vide." in answer.get_data(as_text=True)
    answer = upload(client, _page(world), _page(world) + "/files", "gros.pdf", PDF + bytes(4096))
    assert "trop volumineux (au plus 1,5 Ko)" in answer.get_data(as_text=True)
    assert "Au plus 1,5 Ko par fichier" in client.get(_page(world)).get_data(as_text=True)
    assert _nothing_kept(world)
    assert upload(client, _page(world), _page(world) + "/files", "petit.pdf",
                  PDF).status_code in (302, 303)
    listed = client.get(_page(world)).get_data(as_text=True)
    assert f"{len(PDF)} octets" in listed and "Bytes" not in listed  # sizes in French too
