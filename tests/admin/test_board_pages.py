"""The period dashboard in pages, and its memo of billing figures (issue 16
item 3): a board of a thousand commitments renders one page of rows, its counts
and totals still those of every commitment in the view, and a board rendered
again after one commitment changed recomputes only that commitment's billing."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.billing import billings, dashboard, figures
from portal.extensions import db
from portal.models import BillingPeriod, Commitment, Contact, Project

from .. import factories as f
from ..helpers import cached_get, check_cached, committed

pytestmark = pytest.mark.calendar


def _save(app, billing_id: int, contact_id: int, amount: str) -> None:
    def save() -> None:
        from portal.models import Billing

        billing = db.session.get(Billing, billing_id)
        contact = db.session.get(Contact, contact_id)
        line = billing.commitment.sov_lines[0].id
        billings.save_billing(
            billing,
            contact,
            billings.BillingInput(lines={line: (amount, "0")}),
            billing.version,
        )

    committed(app, save)


def _more_commitments(app, w, n: int) -> list[tuple[int, int]]:
    """``n`` more approved commitments on the world's project, numbered
    ZZ-001…: (commitment id, its contact's id) each."""

    def make() -> list[tuple[int, int]]:
        project = db.session.get(Project, w.project_id)
        out = []
        for i in range(1, n + 1):
            vendor = f.make_vendor()
            contact = f.make_contact(vendor)
            made = f.make_commitment(
                project, vendor, number=f"ZZ-{i:03d}", contacts=[contact]
            )
            db.session.flush()
            out.append((made.id, contact.id))
        return out

    return committed(app, make)


def _decline(app, w, commitment_id: int, reason: str) -> None:
    """Invite ``commitment_id``'s contact to period 1; the contact declines."""
    from portal.billing import invitations
    from portal.models import Invitation, User

    def decline() -> None:
        invitations.invite(
            db.session.get(BillingPeriod, w.period1_id),
            [db.session.get(Commitment, commitment_id)],
            db.session.get(User, w.admin_id),
        )
        inv = db.session.scalars(
            sa.select(Invitation).where(Invitation.commitment_id == commitment_id)
        ).one()
        invitations.answer(inv, inv.contact, accept=False, reason=reason)

    committed(app, decline)


def _cell(html: str, column: str) -> str:
    found = re.search(rf'id="total-{column}">([^<]*)<', html)
    assert found, column
    return found.group(1)


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr id="row-(\d+)"', html)


def test_a_board_in_pages_counts_and_totals_every_page(
    app, client, auth, world
) -> None:
    w = world
    app.config["BOARD_PAGE_SIZE"] = 2
    extra = _more_commitments(app, w, 3)
    amounts = ["100.00", "250.00", "1000.00"]
    billed = [
        _bill_in(app, w, cid, contact, amount)
        for (cid, contact), amount in zip(extra, amounts, strict=True)
    ]
    assert len(billed) == 3
    auth.login_user(w.admin_id)
    url = f"/admin/periods/{w.period1_id}"

    with app.app_context():
        period = db.session.get(BillingPeriod, w.period1_id)
        board = dashboard.period_dashboard(period)
        every = [str(row.commitment.id) for row in board.rows]
        total_e = board.totals["work_this_period"]
        db.session.rollback()
    assert len(every) == 5 and total_e == sum(Decimal(a) for a in amounts)

    pages = []
    for page in (1, 2, 3):
        html = check_cached(app, client, f"{url}?page={page}")
        pages.append(html)
        assert "Total (all 5 commitments, every page)" in html
        assert _cell(html, "work-this-period") == "$1,350.00"
        assert ">All commitments <span" in html and ">5</span>" in html
    # Rows by number, two per page, each commitment on exactly one page.
    assert [_rows(p) for p in pages] == [every[0:2], every[2:4], every[4:5]]
    assert "Commitments 3–4 of 5, by number." in pages[1]
    assert "Commitment 5 of 5, by number." in pages[2]
    assert f'href="/admin/periods/{w.period1_id}?page=3"' in pages[1]

    # A link to a commitment's row lands on the page that holds it.
    for i, cid in enumerate(every):
        html = check_cached(app, client, f"{url}?commitment={cid}")
        assert _rows(html) == _rows(pages[i // 2])
    # A page past the last shows the last, not an empty board.
    assert _rows(check_cached(app, client, f"{url}?page=9")) == every[4:5]
    # The filter's pages keep the filter: three drafts, two pages.
    drafts = check_cached(app, client, f"{url}?state=draft")
    assert "Total (all 3 commitments, every page)" in drafts
    assert "?state=draft&amp;page=2" in drafts or "?page=2&amp;state=draft" in drafts

    # A page of its own: one page, no pager, the plain total.
    app.config["BOARD_PAGE_SIZE"] = 100
    html = check_cached(app, client, url)
    assert _rows(html) == every and "Total (5 commitments)" in html
    assert "board-page-range" not in html


def _bill_in(app, w, commitment_id: int, contact_id: int, amount: str) -> int:
    def make() -> int:
        commitment = db.session.get(Commitment, commitment_id)
        contact = db.session.get(Contact, contact_id)
        period = db.session.get(BillingPeriod, w.period1_id)
        billing = billings.create_billing(commitment, period, contact)
        line = commitment.sov_lines[0].id
        billings.save_billing(
            billing,
            contact,
            billings.BillingInput(lines={line: (amount, "0")}),
            billing.version,
        )
        return billing.id

    return committed(app, make)


def test_the_memo_recomputes_the_changed_billing_only(
    app, client, auth, world, monkeypatch
) -> None:
    w = world
    extra = _more_commitments(app, w, 3)
    ids = [_bill_in(app, w, cid, contact, "100.00") for cid, contact in extra]
    auth.login_user(w.admin_id)
    url = f"/admin/periods/{w.period1_id}"
    dashboard.clear_memo(app)

    computed: list[list[int]] = []
    real = figures.summaries_for

    def counting(found, which):
        found = list(found)
        computed.append(sorted(b.id for b in found))
        return real(found, which)

    monkeypatch.setattr(figures, "summaries_for", counting)

    assert cached_get(client, url)[0] == "miss"
    assert computed == [sorted(ids)]
    # A draft saved again in the same state: the board shows its new figure
    # (the commitment's counter is in the memo's key) and recomputes it alone.
    _save(app, ids[1], extra[1][1], "777.00")
    computed.clear()
    state, html = cached_get(client, url)
    assert state == "miss" and computed == [[ids[1]]]
    assert _cell(html, "work-this-period") == "$977.00"

    # What the memo gives is what a cold worker computes.
    computed.clear()
    dashboard.clear_memo(app)
    app.extensions["fragments"].clear()
    assert cached_get(client, url)[1] == html
    assert computed == [sorted(ids)]

    # With the page cache off the memo is off too (a cold worker's cost).
    app.config["FRAGMENT_CACHE_BYTES"] = 0
    computed.clear()
    cached_get(client, url)
    cached_get(client, url)
    assert computed == [sorted(ids), sorted(ids)]


def test_a_retainage_change_shows_on_the_kept_board(app, client, auth, world) -> None:
    """Same billing, same state, other figures: the commitment's retainage
    percentage changes line 5, and the board shows it."""
    w = world
    ((cid, contact),) = _more_commitments(app, w, 1)
    _bill_in(app, w, cid, contact, "1000.00")
    auth.login_user(w.admin_id)
    url = f"/admin/periods/{w.period1_id}?state=draft"
    before = _cell(check_cached(app, client, url), "retainage")

    def change() -> None:
        db.session.get(Commitment, cid).work_retainage_pct = Decimal("20")

    committed(app, change)
    after = _cell(check_cached(app, client, url), "retainage")
    assert (before, after) == ("$100.00", "$200.00")
    with app.app_context():
        assert db.session.scalar(
            sa.select(Commitment.work_retainage_pct).where(Commitment.id == cid)
        ) == Decimal("20.00")


@pytest.mark.parametrize(
    ("posted", "back"),
    [
        ({"state": "draft", "page": "2"}, "?state=draft&page=2"),
        ({"page": "3"}, "?page=3"),
        ({}, ""),
        # Anything else is dropped, never echoed into the redirect.
        ({"state": "nonsense", "page": "0"}, ""),
        ({"state": "https://evil.example", "page": "1e9"}, ""),
    ],
)
def test_a_bulk_action_goes_back_to_the_page_and_view_it_came_from(
    app, client, auth, world, posted, back
) -> None:
    w = world
    auth.login_user(w.admin_id)
    response = client.post(
        f"/admin/periods/{w.period1_id}/bulk",
        data={"action": "remind", **posted},
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location == f"/admin/periods/{w.period1_id}{back}"
    page = client.get(location).get_data(as_text=True)
    assert "Select at least one commitment first." in page


def test_a_declined_invitation_links_to_the_page_of_its_row(
    app, client, auth, world
) -> None:
    w = world
    app.config["BOARD_PAGE_SIZE"] = 2
    extra = _more_commitments(app, w, 3)
    last = extra[-1][0]

    _decline(app, w, last, "Not this month")
    auth.login_user(w.admin_id)
    listing = client.get("/admin/billings").get_data(as_text=True)
    link = re.search(r'<li class="mb-1 decline"[^>]*><a href="([^"]+)"', listing)
    assert link, "no decline listed"
    href = link.group(1).replace("&amp;", "&")
    assert href.endswith(f"#row-{last}")
    html = client.get(href.split("#")[0]).get_data(as_text=True)
    assert str(last) in _rows(html) and "Not this month" in html


def test_the_billing_list_shows_the_newest_declines_and_links_to_all(
    app, client, auth, world, clock
) -> None:
    """A project's declines gather month after month: the list shows the five
    newest answers and how many there are, and "Show all" lists every one."""
    from datetime import timedelta

    w = world
    extra = _more_commitments(app, w, 7)
    for i, (cid, _) in enumerate(extra):
        clock.shift(timedelta(minutes=5))  # answers in order, ZZ-001 first
        _decline(app, w, cid, f"No work {i}")
    auth.login_user(w.admin_id)
    html = client.get("/admin/billings").get_data(as_text=True)
    shown = re.findall(r'<q class="decline-reason">No work (\d)</q>', html)
    assert shown == ["6", "5", "4", "3", "2"]  # newest answer first
    assert '<span class="badge text-bg-warning" id="declines-total">7</span>' in html
    assert "The 5 newest of 7." in html
    more = re.search(r'id="declines-more">[^<]*<a href="([^"]+)"', html)
    assert more
    every = client.get(more.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert re.findall(r'<q class="decline-reason">No work (\d)</q>', every) == [
        "6",
        "5",
        "4",
        "3",
        "2",
        "1",
        "0",
    ]
    assert "Show the newest only" in every and 'id="declines-more"' not in every
