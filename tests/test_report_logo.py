"""The tenant's logo in PDF reports (checked by its content, shown, printed, replaced,
removed, exported with the tenant), the renderer that fetches nothing from the network, and
the per-person limit on PDFs, on both backends. What the reports say: ``test_reports.py``."""

from __future__ import annotations

import io
import os
import socket
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import csrf_token, login, provision
from tests.test_reports import _poppler, pdf_text  # noqa: F401 (_poppler: autouse fixture)


def pdf_images(data: bytes, tmp_path: Path) -> int:
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    done = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, text=True,
                          check=True, timeout=120)
    return len(done.stdout.splitlines()) - 2  # two header lines


def png(width: int = 120, height: int = 40, *, noise: bool = False) -> bytes:
    image = Image.new("RGB", (width, height), (11, 92, 173))
    if noise:
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


# ------------------------------------------------------------------ the logo


@pytest.fixture
def tenant(app, password_hash):
    return provision(app, "logoco", password_hash, records=1, name="Logo Company")


def _admin(app, tenant):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    assert login(client, tenant.slug, tenant.admin_email).status_code == 302
    return client


def _upload(client, tenant, data: bytes, name: str = "logo.png", *, token: bool = True):
    url = f"/t/{tenant.slug}/admin/branding"
    form = {"logo": (io.BytesIO(data), name)}
    if token:
        form["csrf_token"] = csrf_token(client, url)
    return client.post(url, data=form, content_type="multipart/form-data")


def _stored(app, tenant) -> bytes | None:
    from qalitel.reports.models import Branding
    from tests.conftest import in_tenant

    with in_tenant(app, tenant.slug) as session:
        row = session.get(Branding, 1)
        return bytes(row.logo) if row is not None else None


def test_a_png_logo_is_accepted_shown_and_printed(app, tenant, tmp_path):
    client = _admin(app, tenant)
    pdf_url = f"/t/{tenant.slug}/records/{tenant.record_ids[0]}/pdf"
    before = client.get(pdf_url)
    assert pdf_images(before.data, tmp_path) == 0 and "Logo Company" in pdf_text(before.data)
    logo = png()
    saved = _upload(client, tenant, logo)
    assert saved.status_code == 303 and _stored(app, tenant) == logo
    page = client.get(f"/t/{tenant.slug}/admin/branding").get_data(as_text=True)
    assert "Current logo" in page
    served = client.get(f"/t/{tenant.slug}/admin/branding/logo")
    assert served.data == logo and served.mimetype == "image/png"
    for url in (pdf_url, pdf_url.replace("/pdf", "/8d.pdf")):
        assert pdf_images(client.get(url).data, tmp_path) == 1, url
    # a JPEG replaces it; removing it takes it out of the PDFs
    assert _upload(client, tenant, jpeg(200, 80), "logo.jpg").status_code == 303
    assert _stored(app, tenant)[:3] == b"\xff\xd8\xff"
    token = csrf_token(client, f"/t/{tenant.slug}/admin/branding")
    removed = client.post(f"/t/{tenant.slug}/admin/branding/remove",
                          data={"csrf_token": token})
    assert removed.status_code == 303 and _stored(app, tenant) is None
    assert pdf_images(client.get(pdf_url).data, tmp_path) == 0
    assert client.get(f"/t/{tenant.slug}/admin/branding/logo").status_code == 404


@pytest.mark.parametrize(("data", "name", "message"), [
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "logo.png", "PNG or JPEG"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "logo.svg", "PNG or JPEG"),
    (b"GIF89a" + bytes(40), "logo.gif", "PNG or JPEG"),
    (b"", "logo.png", "empty"),
    (b"\x89PNG\r\n\x1a\n" + bytes(200), "logo.png", "cannot be read"),
    (png()[:60], "logo.png", "cannot be read"),
    (png()[:-12], "logo.png", "cannot be read"),
    (jpeg(200, 80)[:-40], "logo.jpg", "cannot be read"),
    (None, "big.png", "too large (at most 512 KB)"),
    (jpeg(3001, 8), "wide.jpg", "at most 3000 pixels"),
], ids=["pdf", "svg", "gif", "empty", "garbage-png", "truncated-png", "png-without-end",
     "truncated-jpeg", "oversize", "too-wide"])
def test_a_bad_logo_is_refused_and_nothing_is_stored(app, tenant, data, name, message):
    if data is None:
        data = png(600, 400, noise=True)
        assert 512 * 1024 < len(data) < 2 * 1024 * 1024
    client = _admin(app, tenant)
    refused = _upload(client, tenant, data, name)
    assert refused.status_code == 400
    assert message in refused.get_data(as_text=True)
    assert _stored(app, tenant) is None


def test_a_logo_upload_without_csrf_or_by_a_non_admin_is_refused(app, tenant):
    client = _admin(app, tenant)
    url = f"/t/{tenant.slug}/admin/branding"
    untouched = client.post(url, data={"csrf_token": csrf_token(client, url)})
    assert untouched.status_code == 400 and "Choose a PNG or JPEG image." in untouched.get_data(
        as_text=True)
    assert _upload(client, tenant, png(), token=False).status_code == 400
    assert _stored(app, tenant) is None
    huge = _upload(client, tenant, bytes(3 * 1024 * 1024))
    assert huge.status_code == 413 and _stored(app, tenant) is None
    user = app.test_client()
    assert login(user, tenant.slug, tenant.user_email).status_code == 302
    assert user.get(f"/t/{tenant.slug}/admin/branding").status_code == 403
    assert _upload(user, tenant, png()).status_code == 403
    assert _stored(app, tenant) is None
    assert _upload(client, tenant, png()).status_code == 303  # the admin still can
    token = csrf_token(user, f"/t/{tenant.slug}/")
    assert user.post(f"/t/{tenant.slug}/admin/branding/remove",
                     data={"csrf_token": token}).status_code == 403
    assert client.post(f"/t/{tenant.slug}/admin/branding/remove").status_code == 400
    assert _stored(app, tenant) is not None


def test_the_admin_menu_links_the_branding_page(app, tenant):
    client = _admin(app, tenant)
    page = client.get(f"/t/{tenant.slug}/").get_data(as_text=True)
    assert f'href="/t/{tenant.slug}/admin/branding"' in page
    french = app.test_client()
    login(french, tenant.slug, tenant.admin_email)
    assert "Identité visuelle" in french.get(f"/t/{tenant.slug}/admin/branding").get_data(
        as_text=True)


# ------------------------------------------------------------------ nothing from the network


def test_the_fetcher_refuses_every_url_but_static_files_and_data():
    from qalitel.reports.pdf import STATIC, LocalFetcher, RefusedURL

    fetcher = LocalFetcher()
    for url in ("https://example.com/logo.png", "http://127.0.0.1:9/x.css",
                "ftp://example.com/x", "file:///etc/passwd", "file://evil.example/x.css",
                (STATIC / "report.css").as_uri().replace("file://", "file://example.com"),
                STATIC.as_uri() + "/../../pyproject.toml", "//example.com/x.png",
                "javascript:alert(1)", "gopher://example.com/"):
        with pytest.raises(RefusedURL):
            fetcher(url)
    css = fetcher((STATIC / "report.css").as_uri())
    assert b"@page" in css.read() and css.content_type == "text/css"
    data = fetcher("data:text/plain;base64,aGVsbG8=")
    assert data.read() == b"hello"


def test_rendering_opens_no_connection():
    from qalitel.reports.pdf import render_pdf

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        server.setblocking(False)
        port = server.getsockname()[1]
        pdf = render_pdf(f'<link rel="stylesheet" href="http://127.0.0.1:{port}/a.css">'
                         f'<img src="http://127.0.0.1:{port}/a.png">'
                         f'<p style="background: url(http://127.0.0.1:{port}/b.png)">Hi</p>')
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody knocked
    assert "Hi" in pdf_text(pdf)


def test_pdfs_are_limited_per_person(make_app, backend, password_hash):
    app = make_app(backend, extra={"REPORT_LIMIT_PER_USER": "2 per hour"})
    tenant = provision(app, "busyco", password_hash, records=1)
    client = _admin(app, tenant)
    pdf_url = f"/t/{tenant.slug}/records/{tenant.record_ids[0]}/pdf"
    assert client.get(pdf_url).status_code == 200
    assert client.get(pdf_url.replace("/pdf", "/8d.pdf")).status_code == 200
    refused = client.get(pdf_url)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert client.get(f"/t/{tenant.slug}/records/999999/pdf").status_code == 404
    other = app.test_client()  # another person still gets theirs
    assert login(other, tenant.slug, tenant.user_email).status_code == 302
    assert other.get(pdf_url).status_code == 200


def test_a_limit_the_throttle_cannot_read_stops_the_start_up(make_app):
    from core.throttle import ThrottleConfigError

    with pytest.raises(ThrottleConfigError):
        make_app("sqlite", extra={"REPORT_LIMIT_PER_USER": "many per day"})


def test_the_logo_travels_with_a_tenant_export(app, tenant, tmp_path):
    from tests.export_world import export, run

    client = _admin(app, tenant)
    logo = png()
    assert _upload(client, tenant, logo).status_code == 303
    archive = tmp_path / "logoco.zip"
    assert export(app, tenant.slug, "--output", archive).exit_code == 0
    imported = run(app, "tenants", "import", archive, "--as", "logoco-copy")
    assert imported.exit_code == 0, imported.output
    copy = type(tenant)(**{**tenant.__dict__, "slug": "logoco-copy"})
    assert _stored(app, copy) == logo
    client = _admin(app, copy)
    pdf = client.get(f"/t/{copy.slug}/records/{tenant.record_ids[0]}/pdf")
    assert pdf_images(pdf.data, tmp_path) == 1 and "Logo Company" in pdf_text(pdf.data)
