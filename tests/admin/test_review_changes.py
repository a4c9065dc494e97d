"""Issue 15 item 5: the review page shows, per line, what the revision under
review changed from the one submitted before it ("claimed before → now"), and
filters to those lines (``?changed=1`` without a script; review.js instantly).
A first submission has no such column."""

from __future__ import annotations

import re

import pytest

from portal.models import Billing

from .conftest import get
from .test_review import create_billing, decide, enter

pytestmark = pytest.mark.calendar


def line_rows(html: str) -> dict[int, str]:
    """SOV line number → the opening tag and cells of its G703 row."""
    start = html.index('id="g703"')
    table = html[start : html.index("</tbody>", start)]
    return {
        int(m[1]): m[0]
        for m in re.finditer(r'<tr id="line-(\d+)".*?</tr>', table, re.S)
    }


def opening(row: str) -> str:
    return row[: row.index(">") + 1]


def change_cell(row: str) -> str:
    match = re.search(r'<td class="line-change small">(.*?)</td>', row, re.S)
    assert match, row
    return match[1]


def changes(row: str) -> list[tuple[str, str, str]]:
    """(what, before, after) of each amount the row lists as changed."""
    return re.findall(
        r'<span class="text-body-secondary">([^<]+)</span> '
        r'<span class="before">([^<]+)</span> → <strong class="after">([^<]+)</strong>',
        change_cell(row),
    )


@pytest.fixture
def resubmitted(app, client, auth, world):
    """Submitted (rev. 0), sent back, two lines changed, resubmitted (rev. 1)."""
    l1, l2, l3 = world.line_ids
    auth.login_user(world.admin_id)
    billing_id = create_billing(client, world.commitment_id, world.period1_id)
    first = {l1: ("20000", "0"), l2: ("0", "6000"), l3: ("1000", "0")}
    assert enter(app, client, billing_id, first).status_code == 302
    html = client.get(f"/admin/billings/{billing_id}").get_data(as_text=True)
    # A first submission: no "changed" column, no filter, and ?changed=1 hides
    # nothing.
    assert 'class="line-change' not in html and "changed-toggle" not in html
    filtered = line_rows(
        client.get(f"/admin/billings/{billing_id}?changed=1").get_data(as_text=True)
    )
    assert set(filtered) == {1, 2, 3}
    assert not any(" hidden" in opening(row) for row in filtered.values())
    response = decide(
        app,
        client,
        billing_id,
        "send_back",
        lines={l1: ("20000", "0", "revise", "18,000 is in place")},
    )
    assert response.status_code == 302
    # Back with the contact: nothing to compare yet.
    html = client.get(f"/admin/billings/{billing_id}").get_data(as_text=True)
    assert 'class="line-change' not in html
    # Line 1's work lowered, line 2's new stored raised; line 3 as before.
    second = {l1: ("18,000.00", "0"), l2: ("0", "6500"), l3: ("1000", "0")}
    assert enter(app, client, billing_id, second).status_code == 302
    billing = get(app, Billing, billing_id)
    assert (billing.status, billing.revision) == ("under_review", 1)
    return billing_id


def test_exactly_the_changed_lines_are_marked_with_before_and_after(
    client, resubmitted
) -> None:
    html = client.get(f"/admin/billings/{resubmitted}").get_data(as_text=True)
    assert "Changed <span" in html and "since rev. 0" in html
    assert "Revision 1 changed <strong>2 lines</strong> since revision 0" in html
    rows = line_rows(html)
    assert set(rows) == {1, 2, 3}
    marked = {n for n, row in rows.items() if "data-changed" in opening(row)}
    assert marked == {1, 2}
    assert "line-changed" in opening(rows[1]) and "line-changed" not in opening(rows[3])
    assert changes(rows[1]) == [("Work", "$20,000.00", "$18,000.00")]
    assert changes(rows[2]) == [("New stored", "$6,000.00", "$6,500.00")]
    assert changes(rows[3]) == []
    assert "Unchanged" in change_cell(rows[3])
    # Every row hidden? None without the filter.
    assert not any(" hidden" in opening(row) for row in rows.values())
    # The footer spans the extra column.
    assert '<th scope="row" colspan="3">Totals</th>' in html
    assert f'href="/admin/billings/{resubmitted}?changed=1"' in html


def test_the_filter_shows_only_the_changed_lines_without_a_script(
    client, resubmitted
) -> None:
    html = client.get(f"/admin/billings/{resubmitted}?changed=1").get_data(as_text=True)
    rows = line_rows(html)
    hidden = {n for n, row in rows.items() if " hidden" in opening(row)}
    assert hidden == {3}
    # Hidden, not left out: the form still posts every line, and the totals
    # stay the billing's.
    assert 'name="line-' in rows[3]
    assert "Showing 2 of 3 lines." in html
    toggle = re.search(r'<a [^>]*id="changed-toggle"[^>]*>([^<]*)</a>', html)
    assert toggle and toggle[1] == "Show all 3 lines"
    assert f'href="/admin/billings/{resubmitted}"' in toggle[0]
    # An odd value is no filter.
    odd = client.get(f"/admin/billings/{resubmitted}?changed=yes").get_data(
        as_text=True
    )
    assert not any(" hidden" in opening(r) for r in line_rows(odd).values())


def test_a_resubmission_without_changes_marks_nothing(
    app, client, world, resubmitted
) -> None:
    l1, l2, l3 = world.line_ids
    decide(
        app,
        client,
        resubmitted,
        "send_back",
        lines={l3: ("1000", "0", "revise", "Attach the photos")},
    )
    same = {l1: ("18,000.00", "0"), l2: ("0", "6500"), l3: ("1000", "0")}
    assert enter(app, client, resubmitted, same).status_code == 302
    html = client.get(f"/admin/billings/{resubmitted}").get_data(as_text=True)
    assert "Revision 2 changed no line since revision 1" in html
    assert 'class="line-change' not in html and "changed-toggle" not in html
    assert "data-changed" not in html
