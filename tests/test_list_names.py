"""Names of a list's entries compare folded (case, accents, ligatures) on both backends: a
twin added or renamed into is a clear 400 naming it, never a 500, and nothing is written;
a twin inserted by a racing request is the same clear error."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import csrf_token
from tests.html_forms import submit_untouched
from tests.records_world import build_world, client_for


@pytest.fixture
def world_fn(app, password_hash):
    return build_world(app, password_hash)


def _names(world, kind: str) -> list[str]:
    from qalitel.records.field_models import CatalogEntry
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        return sorted(tdb.execute(select(CatalogEntry.name).where(
            CatalogEntry.kind == kind)).scalars())


def _add(client, url: str, kind: str, name: str):
    return client.post(url, data={"csrf_token": csrf_token(client, url), "kind": kind,
                                  "name": name})


@pytest.mark.parametrize(("first", "second"), [
    ("Étiquette", "Étiquette"), ("Étiquette", "étiquette"), ("étiquette", "ETIQUETTE"),
    ("Œillet", "oeillet"), ("Œillet", "Œillet"), ("Ærosol", "aerosol")])
def test_a_folded_twin_is_a_clear_400(world_fn, first, second):
    manager = client_for(world_fn, "manager1")
    url = f"/t/{world_fn.slug}/lists/"
    assert _add(manager, url, "product", first).status_code == 303
    again = _add(manager, url, "product", second)
    assert again.status_code == 400
    assert "already has an entry named" in again.get_data(as_text=True)
    assert _names(world_fn, "product") == [first]
    assert _add(manager, url, "customer", second).status_code == 303  # another list


def test_renaming_into_a_folded_twin_is_a_clear_400(world_fn):
    from qalitel.records.fields import catalog

    with world_fn.app.app_context(), world_fn.context():
        manager = world_fn.user("manager1")
        catalog.add_entry(manager, "process", "Émaillage")
        other = catalog.add_entry(manager, "process", "Soudure").id
    client = client_for(world_fn, "manager1")
    url = f"/t/{world_fn.slug}/lists/"
    rename_url = f"{url}{other}"
    clash = submit_untouched(client, url, lambda f: f.action == rename_url, name="EMAILLAGE")
    assert clash.status_code == 400
    assert "already has an entry named" in clash.get_data(as_text=True)
    assert _names(world_fn, "process") == ["Soudure", "Émaillage"]
    case_only = submit_untouched(client, url, lambda f: f.action == rename_url, name="soudure")
    assert case_only.status_code == 303  # its own name in another case: allowed
    assert _names(world_fn, "process") == ["soudure", "Émaillage"]


def test_a_twin_inserted_meanwhile_is_the_same_clear_error(world_fn, monkeypatch):
    from qalitel.records.fields import catalog
    from qalitel.records.service.checks import RecordError
    from tenants.context import tdb

    with world_fn.app.test_request_context(), world_fn.context():
        manager = world_fn.user("manager1")
        catalog.add_entry(manager, "supplier", "Forges")
        # the check ran before the other request's insert: let it see nothing
        monkeypatch.setattr(catalog, "_check_name", lambda kind, name, entry_id=None: name)
        with pytest.raises(RecordError, match="Forges"):
            catalog.add_entry(manager, "supplier", "Forges")
        other = catalog.add_entry(manager, "supplier", "Aciéries")
        with pytest.raises(RecordError, match="Forges"):
            catalog.rename_entry(manager, other, "Forges")
        assert other.name == "Aciéries"
        tdb.flush()  # the session is still usable
    assert _names(world_fn, "supplier") == ["Aciéries", "Forges"]
