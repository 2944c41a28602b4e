"""What the small-screen layout needs from the pages (the browser test in
tests/browser/test_small_screens.py checks how it looks): the filter block comes unfolded only
when a filter is active and says how many, and every cell of a list names its column."""

from __future__ import annotations

import re

from qalitel.records.specs import parse_spec
from tests.conftest import login

FOLD = re.compile(r'<details class="card fold filters-fold"( open)?>\s*<summary>(.*?)</summary>',
                  re.S)


def test_active_filters_count_what_the_form_shows():
    spec = parse_spec("actions", {"status": "done", "q": " burr ", "record": "3",
                                  "sort": "title", "per_page": "50", "page": "2"})
    assert spec.active_filters == 2  # the search and the status; not the record of a link
    assert parse_spec("records", {"sort": "-number", "per_page": "50"}).active_filters == 0
    assert parse_spec("records", {"status": "bogus", "q": "   "}).active_filters == 0


def _client(world):
    client = world.app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    assert login(client, "bravo", world.b.user_email).status_code == 302
    return client


def test_the_filter_block_is_open_only_with_active_filters(shared_two_tenants):
    client = _client(shared_two_tenants)
    for path in ("/t/bravo/records/", "/t/bravo/actions/"):
        html = client.get(path + "?reset=1").get_data(as_text=True)
        opened, summary = FOLD.search(html).groups()
        assert opened is None and summary.strip() == "Filters"
        html = client.get(path + "?q=record&status=active&overdue=1").get_data(as_text=True)
        opened, summary = FOLD.search(html).groups()
        assert opened == " open" and re.sub(r"<[^>]+>|\s+", " ", summary).split() == [
            "Filters", "3", "active"]
        # the list opened bare restores the saved filters: still open
        assert FOLD.search(client.get(path).get_data(as_text=True)).group(1) == " open"
        client.get(path + "?reset=1")


def test_every_cell_of_a_list_names_its_column(shared_two_tenants):
    client = _client(shared_two_tenants)
    html = client.get("/t/bravo/records/?reset=1").get_data(as_text=True)
    table = html[html.index('<table class="cards">'):html.index("</table>")]
    headers = [h.rstrip(" ↑↓") for h in
               re.findall(r'<th scope="col"[^>]*>\s*<a [^>]*>([^<]+)</a>', table)]
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    assert headers[:2] == ["Number", "Title"] and len(rows) == 3
    for row in rows:
        labels = re.findall(r'<td data-label="([^"]*)"', row)
        assert labels == headers[2:]  # the number and the title are the card's heading
        assert len(re.findall(r"<td[ >]", row)) == len(headers)


def test_wide_screens_hide_the_summary_only_where_details_content_is_supported():
    """An engine without ``::details-content`` keeps the summary to open the menu/filters."""
    from qalitel import ROOT

    css = (ROOT / "qalitel" / "static" / "app.css").read_text()
    supported = css.split("@supports selector(::details-content) {", 1)
    assert len(supported) == 2
    before, guarded = supported[0], supported[1].split("\n}\n", 1)[0]
    assert "details.fold > summary { display:none; }" in guarded
    assert "details.fold > summary { display:none; }" not in before
    assert "::details-content" not in before.split("/* small screens", 1)[-1].replace(
        "@supports", "")
