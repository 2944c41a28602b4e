"""Search, on both backends: accent-, case- and ligature-insensitive both ways, through the
folded ``search_text`` columns (:mod:`qalitel.records.search`); records found by their title,
description, cause analysis, lot, immediate action, structured analysis (5 Whys, Ishikawa)
and their actions' text, actions by theirs; wildcards literal;
several words all required; visibility still the only gate; hostile queries answered, never
a 500. The column's upkeep on every write path: ``test_search_upkeep.py``."""

from __future__ import annotations

import pytest
from markupsafe import escape

from tests.records_world import EXPECTED, World, build_world, client_for

RECORDS = {  # key -> (title, description, cause analysis)
    "accent": ("Réclamation client Dupré", "Boîte abîmée au déballage", ""),
    "upper": ("RECLAMATION FOURNISSEUR", "", ""),
    "ligature": ("Contrôle œil de fixation", "Ærosol percé près de la Straße", ""),
    "cause": ("Fuite hydraulique", "Goutte sous la presse", "Joint torique sous-dimensionné"),
    "via_action": ("Rayure carter", "", ""),
    "percent": ("Taux 100% atteint", "lot_42 bloqué", ""),
    "plain": ("Taux 1000 atteint", "lotX42 bloqué", ""),
    "multi": ("Moteur bruyant", "vibration au démarrage", ""),
    "moteur": ("Moteur neuf", "livré sans notice", ""),
}
ACTIONS = {  # key -> (record key or None, title, description)
    "calibration": ("via_action", "Étalonnage du banc", "Vérifier la clé dynamométrique"),
    "standalone": (None, "Former les opérateurs", "Session sur la PROCÉDURE qualité"),
    "multi": ("multi", "Changer les silentblocs", "Commande chez Müller"),
}
HIDDEN_ACTION = ("Palette confidentielle", "Inventaire des cœurs de bobine")
FIELDED = {  # key -> (title, record fields, analysis)
    "curative": ("Pignon fêlé", {"immediate_action": "Tri intégral du stock en zone rouge"}, {}),
    "lot": ("Palier grippé", {"lot": "LOT-ÉTÉ-7781"}, {}),
    "why": ("Arbre voilé", {}, {"why_1": "Pourquoi voilé ?",
                                "because_1": "Trempe hétérogène du four n°3"}),
    "ishikawa": ("Vis cassée", {}, {"ishikawa_material": "Acier non conforme à la fiche"}),
}
HIDDEN_ANALYSIS = "Fournisseur Übergröße écarté"  # on the confidential HR record


def _build(app, password_hash) -> World:
    from qalitel.records import service
    from qalitel.records.fields.analysis import update_analysis
    from qalitel.records.models import NonConformity

    world = build_world(app, password_hash)
    with app.app_context(), world.context():
        manager = world.user("manager1")
        for key, (title, description, cause) in RECORDS.items():
            record = service.create_nonconformity(manager, title, description,
                                                  cause_analysis=cause)
            world.records[key] = record.id
            world.numbers[key] = record.number
        for key, (record_key, title, description) in ACTIONS.items():
            record = (None if record_key is None
                      else service_record(NonConformity, world.records[record_key]))
            action = service.create_action(manager, title, record=record,
                                           description=description)
            world.actions[key] = action.id
        hr = service_record(NonConformity, world.records["hr"])
        hidden = service.create_action(world.user("admin"), HIDDEN_ACTION[0], record=hr,
                                       description=HIDDEN_ACTION[1])
        world.actions["hidden"] = hidden.id
        for key, (title, fields, analysis) in FIELDED.items():
            record = service.create_nonconformity(manager, title, fields=fields)
            if analysis:
                update_analysis(manager, record, **analysis)
            world.records[key] = record.id
        update_analysis(world.user("admin"), hr, why_2=HIDDEN_ANALYSIS)
        service.update_nonconformity(world.user("admin"), hr, lot="HRLOT-5521",
                                     immediate_action="Quarantaine Kœnig")
    return world


def service_record(model, record_id):
    from tenants.context import tdb

    return tdb.get(model, record_id)


@pytest.fixture(scope="module")
def world(make_module_app, shared_backend, password_hash) -> World:
    """Read-only: the tests on it only search."""
    return _build(make_module_app(shared_backend), password_hash)


@pytest.fixture(scope="module")
def manager(world):
    return client_for(world, "manager1")


def _shown(html: str, titles: dict[str, str]) -> set[str]:
    return {key for key, title in titles.items() if str(escape(title)) in html}


def records_found(client, world: World, q: str, **filters: str) -> set[str]:
    response = client.get(f"/t/{world.slug}/records/", query_string={"q": q, **filters})
    assert response.status_code == 200, q
    titles = {key: RECORDS[key][0] for key in RECORDS}
    titles.update({key: f"{key} title" for key in world.records if key not in RECORDS})
    titles.update({key: title for key, (title, _f, _a) in FIELDED.items()})
    return _shown(response.get_data(as_text=True), titles)


def actions_found(client, world: World, q: str) -> set[str]:
    response = client.get(f"/t/{world.slug}/actions/", query_string={"q": q})
    assert response.status_code == 200, q
    titles = {key: title for key, (_r, title, _d) in ACTIONS.items()}
    titles["hidden"] = HIDDEN_ACTION[0]
    return _shown(response.get_data(as_text=True), titles)


# ------------------------------------------------------------------ the normaliser


@pytest.mark.parametrize(("one", "other"), [
    ("reclamation", "réclamation"), ("RÉCLAMATION", "reclamation"), ("Réclamation", "RECLAMATION"),
    ("oeil", "œil"), ("ŒIL", "oeil"), ("Ærosol", "aerosol"), ("straße", "strasse"),
    ("STRASSE", "Straße"), ("ﬁche", "fiche"), ("Ｌｏｔ", "lot"), ("Ça  va\t\n", "ca va"),
    ("ré\u200bclamation", "reclamation"), ("Dupre\u0301", "dupré"), ("Müller", "muller"),
])
def test_fold_is_the_same_both_ways(one, other):
    from core.text import fold

    assert fold(one) == fold(other)
    assert fold(fold(one)) == fold(one)


def test_fold_of_nothing_and_controls():
    from core.text import fold

    assert fold(None) == fold("") == fold(" \x00\x07 ") == ""
    assert fold("a\x00b") == "a b"


# ------------------------------------------------------------------ lists


@pytest.mark.parametrize("q", ["reclamation", "RÉCLAMATION", "Reclamation", "réclamation"])
def test_french_words_both_ways(world, manager, q):
    assert records_found(manager, world, q) == {"accent", "upper"}


@pytest.mark.parametrize(("q", "expected"), [
    ("oeil", {"ligature"}), ("ŒIL", {"ligature"}), ("aerosol", {"ligature"}),
    ("ÆROSOL", {"ligature"}), ("strasse", {"ligature"}), ("STRAßE", {"ligature"}),
    ("boite abimee", {"accent"}), ("dupre", {"accent"}),
])
def test_ligatures_and_accents_in_the_description(world, manager, q, expected):
    assert records_found(manager, world, q) == expected


def test_cause_analysis_is_searched(world, manager):
    assert records_found(manager, world, "joint torique") == {"cause"}
    assert records_found(manager, world, "SOUS-DIMENSIONNE") == {"cause"}


def test_a_record_is_found_through_its_actions(world, manager):
    assert records_found(manager, world, "etalonnage") == {"via_action"}
    assert records_found(manager, world, "cle dynamometrique") == {"via_action"}
    assert records_found(manager, world, "muller") == {"multi"}


@pytest.mark.parametrize(("q", "expected"), [
    ("zone rouge", {"curative"}), ("TRI INTEGRAL", {"curative"}), ("tri intégral", {"curative"}),
    ("lot-ete-7781", {"lot"}), ("LOT-ÉTÉ-7781", {"lot"}), ("7781", {"lot"}),
    ("trempe heterogene", {"why"}), ("TREMPE HÉTÉROGÈNE", {"why"}), ("four n°3", {"why"}),
    ("acier non conforme", {"ishikawa"}), ("ACIER fiche", {"ishikawa"}),
    ("voile trempe", {"why"}),  # a word in the title, another in the analysis
])
def test_record_fields_and_the_analysis_are_searched(world, manager, q, expected):
    assert records_found(manager, world, q) == expected


def test_a_record_one_cannot_see_is_never_found_through_its_fields_or_analysis(world):
    queries = ("ubergrosse ecarte", "FOURNISSEUR ÜBERGRÖSSE", "hrlot-5521", "quarantaine koenig")
    for profile in ("manager1", "user1", "user2"):
        client = client_for(world, profile)
        for q in queries:
            assert records_found(client, world, q) == set(), (profile, q)
    for profile in ("admin", "manager2"):  # manager2 is cleared for HR through a group
        for q in queries:
            assert records_found(client_for(world, profile), world, q) == {"hr"}, (profile, q)


def test_actions_are_found_by_title_and_description(world, manager):
    assert actions_found(manager, world, "ETALONNAGE") == {"calibration"}
    assert actions_found(manager, world, "procedure qualite") == {"standalone"}
    assert actions_found(manager, world, "operateurs") == {"standalone"}
    assert actions_found(manager, world, "Mueller") == set()  # no transliteration guess
    assert actions_found(manager, world, "müller") == {"multi"}


def test_actions_are_found_by_their_records_reference(world, manager):
    number = world.numbers["via_action"]
    for q in (f"NC-{number}", f"#{number}", f"nc-{number}"):
        assert "calibration" in actions_found(manager, world, q), q


def test_wildcards_are_literal(world, manager):
    assert records_found(manager, world, "100%") == {"percent"}
    assert records_found(manager, world, "lot_42") == {"percent"}
    assert records_found(manager, world, "%") == {"percent"}
    underscored = {key for key in EXPECTED["manager1"] if "_" in key}  # "by_user1 title"
    assert records_found(manager, world, "_") == {"percent", *underscored}
    assert records_found(manager, world, "lot%42") == set()
    assert records_found(manager, world, "\\") == set()
    assert actions_found(manager, world, "%") == set()


def test_several_words_must_all_match(world, manager):
    assert records_found(manager, world, "moteur") == {"multi", "moteur"}
    assert records_found(manager, world, "moteur vibration") == {"multi"}
    assert records_found(manager, world, "VIBRATION   Moteur") == {"multi"}
    assert records_found(manager, world, "moteur notice") == {"moteur"}
    assert records_found(manager, world, "moteur vibration notice") == set()
    # a word in the record, another in one of its actions: the record is one document
    assert records_found(manager, world, "bruyant silentblocs") == {"multi"}
    assert actions_found(manager, world, "silentblocs muller") == {"multi"}
    assert actions_found(manager, world, "silentblocs bruyant") == set()


def test_search_and_filters_combine(world, manager):
    assert records_found(manager, world, "moteur", status="open") == {"multi", "moteur"}
    assert records_found(manager, world, "moteur", status="closed") == set()
    assert records_found(manager, world, "title", severity="critical") == {"other"}


def test_the_reference_still_finds_its_record(world, manager):
    number = world.numbers["cause"]
    assert "cause" in records_found(manager, world, f"NC-{number}")


def test_a_record_one_cannot_see_is_never_found_through_its_action(world):
    q = "coeurs de bobine"
    for profile in ("manager1", "user1", "user2"):
        client = client_for(world, profile)
        assert "hr" not in records_found(client, world, q), profile
        assert records_found(client, world, "palette confidentielle") == set(), profile
        assert actions_found(client, world, q) == set(), profile
        hr = world.numbers["hr"]
        assert "hidden" not in actions_found(client, world, f"NC-{hr}"), profile
    admin = client_for(world, "admin")
    assert records_found(admin, world, q) == {"hr"}
    assert actions_found(admin, world, q) == {"hidden"}
    cleared = client_for(world, "manager2")  # cleared for HR through a group
    assert records_found(cleared, world, q) == {"hr"}


def test_the_csv_exports_search_the_same_way(world, manager):
    body = manager.get(f"/t/{world.slug}/records/export.csv",
                       query_string={"q": "reclamation"}).get_data(as_text=True)
    assert RECORDS["accent"][0] in body and RECORDS["upper"][0] in body
    assert RECORDS["cause"][0] not in body
    body = manager.get(f"/t/{world.slug}/actions/export.csv",
                       query_string={"q": "etalonnage"}).get_data(as_text=True)
    assert ACTIONS["calibration"][1] in body and ACTIONS["standalone"][1] not in body


@pytest.mark.parametrize("q", [
    "x" * 10_000, "réclamation" * 1000, "\x00\x01\x1b[31m", "a\x00b", "\u202e\u200b",
    "' OR 1=1 --", "%%%___\\\\", " ".join(["a"] * 500), "\u0301" * 50, "\ufdfa" * 100,
    "<script>alert(1)</script>",
])
def test_hostile_queries_are_answered(world, manager, q):
    for url in ("/records/", "/actions/", "/records/export.csv", "/actions/export.csv"):
        response = manager.get(f"/t/{world.slug}{url}", query_string={"q": q})
        assert response.status_code in (200, 400), (url, q[:20])


@pytest.mark.parametrize("raw", ["%ED%A0%80", "%FF%FE", "%C3", "%00", "%E2%80%AE%25"])
def test_undecodable_queries_are_answered(world, manager, raw):
    for url in ("/records/", "/actions/"):
        response = manager.get(f"/t/{world.slug}{url}?q={raw}")
        assert response.status_code in (200, 400), (url, raw)


def test_a_long_query_is_truncated_not_refused(world, manager):
    assert records_found(manager, world, "reclamation " + "x" * 10_000) == set()
    assert records_found(manager, world, "reclamation" + " " * 200 + "zzz") == \
        {"accent", "upper"}


def test_the_query_splits_words_and_names_references():
    from qalitel.records.search import MAX_WORDS, reference_number, words

    assert words("  Réclamation  RECLAMATION œil ") == ["reclamation", "oeil"]
    assert len(words(" ".join(f"w{i}" for i in range(50)))) == MAX_WORDS
    assert words("\u0301\u200b") == []
    assert [reference_number(q) for q in ("NC-12", "#7", " 3 ", "nc-4", "x", "١٢")] == \
        [12, 7, 3, 4, None, None]
