"""Printing a record page (``qalitel/static/print.css``): Chromium's print-to-PDF of a typical
record holds one or two A4 pages, with the record's content and without the menu, the
footer, the language switch, buttons or form controls."""

from __future__ import annotations

import subprocess
import unicodedata
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import provision

pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

DESCRIPTION = ("During the final inspection of batch 2026-118, 14 housings out of 250 showed "
               "scratches on the visible face, deeper than the 0.1 mm the drawing allows. The "
               "parts were found by the operator of line 2 and set aside.")
CAUSE = ("The protective film of the supplier's new packaging tears when the parts are "
         "unpacked with a cutter; the blade touches the visible face.")


def _typical_record(app, password_hash) -> tuple[str, int]:
    """A record as a quality manager writes one: texts, three actions, a few steps."""
    from qalitel.records import service
    from qalitel.users.models import User
    from tests.conftest import in_tenant

    handle = provision(app, "printco", password_hash, records=0)
    with in_tenant(app, "printco") as session:
        admin = session.get(User, handle.user_ids["admin"])
        record = service.create_nonconformity(
            admin, "Scratched housings on batch 2026-118", DESCRIPTION, severity="major",
            origin="supplier", assignee_id=handle.user_ids["user"], cause_analysis=CAUSE)
        for kind, title in (("immediate", "Sort the batch and quarantine the scratched parts"),
                            ("corrective", "Unpack with a safety cutter and a depth guard"),
                            ("preventive", "Add packaging to the supplier audit checklist")):
            service.create_action(admin, title, record=record, kind=kind,
                                  owner_id=handle.user_ids["user"],
                                  due_date=date.today() + timedelta(days=14))
        for step in ("analysis", "treatment"):
            service.change_status(admin, record, step, f"Moved to {step} after review.")
        session.commit()
        return handle.admin_email, record.id


def _pages(pdf: bytes, tmp_path) -> int:
    path = tmp_path / "printed.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True,
                          timeout=120).stdout
    return int(next(line for line in info.splitlines() if line.startswith("Pages:")).split()[1])


def _text(pdf: bytes) -> str:
    done = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True,
                          timeout=120)
    return " ".join(unicodedata.normalize("NFKC", done.stdout.decode()).split())


def test_a_record_page_prints_on_one_or_two_a4_pages(app, password_hash, live_server,
                                                     new_context, tmp_path):
    email, record_id = _typical_record(app, password_hash)
    page = new_context(locale="en-GB").new_page()
    page.goto("/t/printco/login")
    sign_in(page, email)
    page.goto(f"/t/printco/records/{record_id}")
    expect(page.locator("header.top")).to_be_visible()
    page.emulate_media(media="print")
    for hidden in ("header.top", "footer.site-footer", "form.lang-switch", "form.signout"):
        expect(page.locator(hidden)).to_be_hidden()
    visible_controls = page.locator("button, input, select, textarea, a.button").evaluate_all(
        "els => els.filter(e => e.offsetParent !== null).length")
    assert visible_controls == 0
    pdf = page.pdf(format="A4", print_background=False)
    assert 1 <= _pages(pdf, tmp_path) <= 2
    text = _text(pdf)
    for expected in ("Scratched housings on batch 2026-118", "protective film",
                     "Sort the batch", "Moved to treatment after review."):
        assert expected in text, expected
    for absent in ("Sign out", "Dashboard", "Change status", "Privacy and cookies", "Français",
                   "8D report"):
        assert absent not in text, absent
    # the other record pages print without their controls too
    for url in ("/t/printco/records/", "/t/printco/actions/", "/t/printco/"):
        page.goto(url)
        expect(page.locator("header.top")).to_be_hidden()
        assert page.locator("button, input, select, textarea, a.button").evaluate_all(
            "els => els.filter(e => e.offsetParent !== null).length") == 0, url
