"""PDF reports of a non-conformity (record PDF and 8D report), on both backends: the text
the PDFs hold (extracted with Debian's pdftotext), in French and in English: the record's
fields, its structured analysis, its actions' planned effectiveness checks, its closure
justification and reopening reasons, each in its 8D discipline; a record the reader cannot
see is a 404; a confidential folder's name stays with the cleared. The logo, the renderer
and the limit: ``test_report_logo.py``."""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from datetime import date, timedelta

import pytest

from tests.records_world import build_world, client_for

SECRET = "Merger-Zephyr-7Q"  # the confidential folder's name, unlike any other text
ERASED = "Former user 7F3A"  # an erased account's stored pseudonym
SECTIONS_EN = ["D1 Team", "D2 Problem description", "D3 Containment actions", "D4 Root cause",
               "D5 Chosen corrective actions",
               "D6 Implementation and effectiveness verification", "D7 Preventive actions",
               "D8 Closure"]
SECTIONS_FR = ["D1 Équipe", "D2 Description du problème", "D3 Actions de confinement",
               "D4 Cause racine", "D5 Actions correctives retenues",
               "D6 Mise en œuvre et vérification de l’efficacité", "D7 Actions préventives",
               "D8 Clôture"]
ACTIONS = {"immediate": "Quarantine lot 42", "corrective": "Replace the seal supplier",
           "preventive": "Add a seal check to incoming inspection"}
FIELDS = {"lot": "LOT-2026-118", "quantity": "1250.5", "quantity_unit": "pcs",
          "immediate_action": "Sorted the whole stock at the press.", "nq_cost": "1234.50"}
ANALYSIS = {"why_1": "Why does oil leak from press 3?", "because_1": "The seal cracked early.",
            "why_2": "Why did the seal crack?", "because_2": "Its rubber is too hard.",
            "ishikawa_material": "New rubber compound since March.",
            "main_cause": "material"}
CHECK = {"criteria": "No leak reported for 30 days.", "planned": date(2026, 3, 4),
         "late_title": "Retrain the press operators", "late_criteria": "Audit of 5 changes."}
CLOSING = {"justification": "Customer accepted the residual risk in writing.",
           "reopen": "The leak came back on press 3.",
           "unfounded": "Same defect as a record already open, same lot."}


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    done = subprocess.run(["pdftotext", "-raw", "-", "-"], input=data, capture_output=True,
                          check=True, timeout=120)
    # one space between words, lines joined; ligatures (ﬁ) as letters
    return " ".join(unicodedata.normalize("NFKC", done.stdout.decode()).split())


@pytest.fixture(scope="module", autouse=True)
def _poppler():
    if shutil.which("pdftotext") is None or shutil.which("pdfimages") is None:
        pytest.fail("pdftotext and pdfimages (Debian's poppler-utils) are needed")


@pytest.fixture(scope="module")
def world(make_module_app, shared_backend, password_hash):
    """The records world, plus one full record (three kinds of action, a verified one, an
    erased owner) and the confidential folder renamed to :data:`SECRET`. Read only."""
    from qalitel.records import service
    from qalitel.records.models import Folder
    from qalitel.users.models import Profile, User
    from tenants.context import tdb

    world = build_world(make_module_app(shared_backend), password_hash)
    with world.app.app_context(), world.context():
        tdb.get(Folder, world.folders["Legal"]).name = SECRET
        erased = User(email="x7f3a@erased.invalid", name=ERASED, password_hash=password_hash,
                      profile=Profile.USER)
        tdb.add(erased)
        tdb.flush()
        manager = world.user("manager1")
        record = service.create_nonconformity(
            manager, "Leaking hydraulic seal", "Oil found under press 3.",
            severity="major", origin="supplier", folder_id=world.folders["General"],
            assignee_id=world.users["user1"],
            cause_analysis="Seal hardness out of tolerance at the supplier.")
        world.records["full"], world.numbers["full"] = record.id, record.number
        service.create_action(manager, ACTIONS["immediate"], record=record, kind="immediate",
                              owner_id=world.users["user1"], status="done")
        fix = service.create_action(manager, ACTIONS["corrective"], record=record,
                                    owner_id=erased.id, status="done",
                                    due_date=date.today() + timedelta(days=5))
        service.check_effectiveness(world.user("admin"), fix, True, "No leak over 4 weeks.")
        service.create_action(manager, ACTIONS["preventive"], record=record, kind="preventive",
                              owner_id=world.users["manager2"])
        for step in ("analysis", "treatment"):
            service.change_status(world.user("admin"), record, step, f"to {step}")
        _fields_and_analysis(world, record)
        _closed_and_reopened(world)
    return world


def _fields_and_analysis(world, record) -> None:
    from qalitel.records import service
    from qalitel.records.field_models import CatalogEntry
    from qalitel.records.fields.analysis import update_analysis
    from tenants.context import tdb

    product = CatalogEntry(kind="product", name="Shaft 25")
    partner = CatalogEntry(kind="supplier", name="Seal Supplies SA")
    tdb.add_all([product, partner])
    tdb.flush()
    manager = world.user("manager1")
    service.update_nonconformity(manager, record, product=product.id,
                                 partner=partner.id, **FIELDS)
    update_analysis(manager, record, **ANALYSIS)


def _closed_and_reopened(world) -> None:
    """A record whose checks were planned, closed with a justification, then reopened."""
    from qalitel.records import service

    admin, manager = world.user("admin"), world.user("manager1")
    record = service.create_nonconformity(manager, "Cracked weld seam", "Seen at assembly.",
                                          cause_analysis="Wrong filler wire.")
    world.records["reopened"], world.numbers["reopened"] = record.id, record.number
    fix = service.create_action(manager, "Change the filler wire", record=record,
                                status="done", effectiveness_due_on=CHECK["planned"],
                                effectiveness_criteria=CHECK["criteria"])
    service.check_effectiveness(admin, fix, False, "Two cracks again.")
    service.create_action(manager, CHECK["late_title"], record=record, status="done",
                          effectiveness_due_on=date.today() - timedelta(days=3),
                          effectiveness_criteria=CHECK["late_criteria"])
    for step in ("analysis", "treatment", "verification"):
        service.change_status(admin, record, step)
    service.change_status(admin, record, "closed", justification=CLOSING["justification"])
    service.reopen(admin, record, CLOSING["reopen"])
    unfounded = service.create_nonconformity(manager, "Scratch on a cover")
    world.records["unfounded"], world.numbers["unfounded"] = unfounded.id, unfounded.number
    service.change_status(admin, unfounded, "unfounded", justification=CLOSING["unfounded"])


def _get(client, url: str):
    response = client.get(url)
    return response, (pdf_text(response.data) if response.status_code == 200 else "")


def _urls(world, key: str) -> tuple[str, str]:
    base = f"/t/{world.slug}/records/{world.records[key]}"
    return f"{base}/pdf", f"{base}/8d.pdf"


def test_the_record_pdf_in_english(world):
    response, text = _get(client_for(world, "manager1"), _urls(world, "full")[0])
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    number = f"NC-{world.numbers['full']}"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{number}.pdf"'
    assert response.headers["Cache-Control"] == "private, no-store"
    for expected in (number, "Leaking hydraulic seal", "Acme", "Oil found under press 3.",
                     "Seal hardness out of tolerance", *ACTIONS.values(), "Supplier", "Major",
                     "General", "User acme", "Effective", "No leak over 4 weeks.",
                     "Treatment", "to treatment", "Non-conformity", "Page 1 / ",
                     f"Acme · {number}"):
        assert expected in text, expected
    assert ERASED in text  # an English reader reads the stored pseudonym


def test_the_8d_report_in_french(world):
    client = client_for(world, "manager1")
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr"
    response, text = _get(client, _urls(world, "full")[1])
    assert response.status_code == 200
    number = f"NC-{world.numbers['full']}"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{number}-8D.pdf"'
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "Rapport 8D" in text and number in text and "Leaking hydraulic seal" in text
    assert "Acme" in text and "Généré le" in text
    positions = [text.find(heading) for heading in SECTIONS_FR]
    assert -1 not in positions and positions == sorted(positions), (positions, text)
    for expected in (*ACTIONS.values(), "Seal hardness out of tolerance", "Efficace",
                     "Ancien utilisateur 7F3A", "Traitement", "Fournisseur", "Majeure"):
        assert expected in text, expected
    assert ERASED not in text and "Team" not in text
    # each action sits in its discipline
    d3, d4, d5, d7 = (text.index(h) for h in (SECTIONS_FR[2], SECTIONS_FR[3], SECTIONS_FR[4],
                                               SECTIONS_FR[6]))
    assert d3 < text.index(ACTIONS["immediate"]) < d4
    assert d5 < text.index(ACTIONS["corrective"]) < text.index(SECTIONS_FR[5])
    assert d7 < text.index(ACTIONS["preventive"]) < text.index(SECTIONS_FR[7])


def test_the_8d_report_in_english_and_the_record_pdf_in_french(world):
    english = client_for(world, "admin")
    _response, text = _get(english, _urls(world, "full")[1])
    positions = [text.find(heading) for heading in SECTIONS_EN]
    assert -1 not in positions and positions == sorted(positions), (positions, text)
    assert "8D report" in text and "Acme" in text
    french = client_for(world, "admin")
    french.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr"
    _response, text = _get(french, _urls(world, "full")[0])
    for expected in ("Non-conformité", "Date de détection", "Analyse des causes",
                     *ACTIONS.values(), "Historique"):
        assert expected in text, expected


def flat(value: str) -> str:
    """``value`` as :func:`pdf_text` gives it back (no-break spaces as spaces)."""
    return " ".join(unicodedata.normalize("NFKC", value).split())


TYPED = (FIELDS["lot"], FIELDS["immediate_action"], ANALYSIS["why_1"], ANALYSIS["because_2"],
         ANALYSIS["ishikawa_material"])


FIELD_LABELS = {
    "en": ["Product or process", "Product: Shaft 25", "Lot", "Quantity", "1,250.5 pcs",
           "Customer or supplier", "Supplier: Seal Supplies SA", "Cost of non-quality",
           "€1,234.50", "Immediate action", "5 Whys and Ishikawa grid", "Why 1", "Answer 2",
           "Ishikawa: Material", "Main cause category Material"],
    "fr": ["Produit ou processus", "Produit : Shaft 25", "Quantité", "1 250,5 pcs",
           "Client ou fournisseur", "Fournisseur : Seal Supplies SA", "Coût de non-qualité",
           "1 234,50 €", "Action immédiate (curative)", "5 Pourquoi et diagramme d’Ishikawa",
           "Pourquoi 1", "Réponse 2", "Ishikawa : Matière",
           "Catégorie de cause principale Matière"],
}


def _client(world, key: str, language: str):
    client = client_for(world, key)
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    return client


@pytest.mark.parametrize("language", ["en", "fr"])
def test_both_reports_show_the_record_fields_and_the_analysis(world, language):
    client = _client(world, "manager1", language)
    pdf, eight_d = _urls(world, "full")
    _response, text = _get(client, pdf)
    for expected in (*TYPED, *FIELD_LABELS[language]):
        assert flat(expected) in text, expected
    _response, text = _get(client, eight_d)
    sections = SECTIONS_FR if language == "fr" else SECTIONS_EN
    d3, d4, d5 = (text.index(h) for h in sections[2:5])
    cost = {"en": "€1,234.50", "fr": "1 234,50 €"}[language]
    assert text.index(sections[1]) < text.index(flat(cost)) < d3  # the facts, in D2
    assert d3 < text.index(FIELDS["immediate_action"]) < d4
    for expected in (ANALYSIS["why_1"], ANALYSIS["because_2"], ANALYSIS["ishikawa_material"],
                     FIELD_LABELS[language][-1]):
        assert d4 < text.index(flat(expected)) < d5, expected


@pytest.mark.parametrize("language", ["en", "fr"])
def test_both_reports_show_the_planned_checks_closure_and_reopening(world, language):
    from babel.dates import format_date

    words = {"en": ("Planned on", "Effectiveness criteria", "Not effective", "Pending",
                    "Check overdue", "Justification", "Reopened · Treatment", "Closed"),
             "fr": ("Prévue le", "Critères d’efficacité", "Non efficace", "En attente",
                    "Vérification en retard", "Justification", "Rouverte · Traitement",
                    "Clôturée")}[language]
    planned = flat(format_date(CHECK["planned"], "medium", locale=language))
    late = flat(format_date(date.today() - timedelta(days=3), "medium", locale=language))
    client = _client(world, "manager1", language)
    pdf, eight_d = _urls(world, "reopened")
    _response, record_text = _get(client, pdf)
    _response, report_text = _get(client, eight_d)
    for text in (record_text, report_text):
        for expected in (*words, planned, late, CHECK["criteria"], CHECK["late_criteria"],
                         CLOSING["justification"], CLOSING["reopen"]):
            assert expected in text, expected
    sections = SECTIONS_FR if language == "fr" else SECTIONS_EN
    d6, d7, d8 = (report_text.index(h) for h in sections[5:8])
    for expected in (planned, CHECK["criteria"], CHECK["late_criteria"], words[4]):
        assert d6 < report_text.index(expected, d6) < d7, expected
    for expected in (CLOSING["justification"], CLOSING["reopen"], words[6]):
        assert d8 < report_text.index(expected), expected
    workflow = record_text.index("Workflow" if language == "en" else "Circuit")
    assert workflow < record_text.index(CLOSING["reopen"])


@pytest.mark.parametrize(("language", "outcome"), [("en", "Unfounded"), ("fr", "Non fondée")])
def test_both_reports_show_why_a_record_is_unfounded(world, language, outcome):
    client = _client(world, "manager1", language)
    pdf, eight_d = _urls(world, "unfounded")
    _response, text = _get(client, pdf)
    assert f"{outcome} Admin acme" in text and CLOSING["unfounded"] in text
    _response, text = _get(client, eight_d)
    d8 = text.index((SECTIONS_FR if language == "fr" else SECTIONS_EN)[7])
    assert d8 < text.index(f"{outcome} Admin acme") < text.index(CLOSING["unfounded"])


def test_a_record_the_reader_cannot_see_is_a_404(world):
    user2 = client_for(world, "user2")
    for key in ("other", "full", "hr"):
        for url in _urls(world, key):
            assert user2.get(url).status_code == 404, url
            page = user2.get(url.rsplit("/", 1)[0])
            assert page.status_code == 404  # the same answer as the record's page
    base = f"/t/{world.slug}/records"
    for record_id in ("999999", "2147483648", "99999999999999999999"):
        for suffix in ("pdf", "8d.pdf"):
            assert user2.get(f"{base}/{record_id}/{suffix}").status_code == 404
    anonymous = world.app.test_client()
    refused = anonymous.get(_urls(world, "full")[0])
    assert refused.status_code == 302 and "/login" in refused.headers["Location"]


def test_a_confidential_folder_name_stays_with_the_cleared(world):
    user2 = client_for(world, "user2")  # assignee of a record in the folder, not cleared
    for url in _urls(world, "legal_user2"):
        response, text = _get(user2, url)
        assert response.status_code == 200
        assert SECRET not in text and "Confidential folder" in text, url
    _response, text = _get(client_for(world, "admin"), _urls(world, "legal_user2")[0])
    assert SECRET in text


def test_the_record_page_offers_both_reports(world):
    page = client_for(world, "user1").get(f"/t/{world.slug}/records/{world.records['full']}")
    body = page.get_data(as_text=True)
    pdf, eight_d = _urls(world, "full")
    assert f'href="{pdf}"' in body and f'href="{eight_d}"' in body
    assert 'media="print"' in body and "print.css" in body
