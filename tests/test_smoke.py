"""First checks of the whole chain on both backends: provision, resolve, sign in, read."""

from tests.conftest import login


def test_login_page_answers(two_tenants):
    client = two_tenants.app.test_client()
    assert client.get("/t/alpha/login").status_code == 200
    assert client.get("/t/nosuch/login").status_code == 404


def test_user_reads_own_record_only(two_tenants):
    client = two_tenants.app.test_client()
    response = login(client, "alpha", two_tenants.a.user_email)
    assert response.status_code == 302
    own = client.get(f"/t/alpha/records/{two_tenants.a.record_ids[0]}")
    assert own.status_code == 200 and b"alpha record 0" in own.data
    only_in_b = two_tenants.b.record_ids[-1]
    assert only_in_b not in two_tenants.a.record_ids
    assert client.get(f"/t/alpha/records/{only_in_b}").status_code == 404
    other = client.get(f"/t/bravo/records/{two_tenants.b.record_ids[0]}")
    assert other.status_code == 302  # not signed in at bravo
    assert b"secret of bravo" not in other.data
