"""The contact billing page from the rendered-page cache (issue 16 item 2).

The cached page must be the page a fresh render gives, after every kind of
change anyone can make to what it shows, over several months; with the
session's own CSRF token and this request's flashed messages.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from portal.billing import billings as wf
from portal.core.statuses import LineStatus, PeriodStatus
from portal.extensions import db
from portal.models import (
    Billing,
    BillingPeriod,
    Commitment,
    Contact,
    Project,
    SovLine,
    User,
    Vendor,
)
from portal.web import fragments

from .. import factories as f
from ..conftest import Auth
from ..helpers import (
    CSRF_INPUT,
    assert_no_token_cached,
    cached_get,
    check_cached,
    committed,
    counting,
)

D = Decimal


def test_cached_page_is_the_fresh_page_after_every_change(
    app, client, auth, w, make_billing, clock
):
    billing_id = make_billing(w)
    url = f"/portal/billings/{billing_id}"
    auth.login_contact(w.contact_id)
    first = check_cached(app, client, url)
    assert "\x00" not in first
    line_id = w.line_ids[0]

    # The contact saves amounts through the form.
    form = {
        "csrf_token": re.search(r'name="csrf_token" value="([^"]*)"', first).group(1),
        "action": "save",
        "version": re.search(r'name="version" value="(\d+)"', first).group(1),
        f"line-{line_id}-work": "1234.56",
    }
    assert client.post(url, data=form).status_code == 302
    page = check_cached(app, client, url)
    assert "1,234.56" in page

    def comment():
        b = db.session.get(Billing, billing_id)
        wf.add_comment(b, db.session.get(User, w.admin_id), "Please add the invoice")

    committed(app, comment)
    assert "Please add the invoice" in check_cached(app, client, url)

    def attach():
        f.make_attachment(
            billing_id, b"%PDF-1.4 test", "cache-test.pdf", original_name="inv-77.pdf"
        )

    committed(app, attach)
    assert "inv-77.pdf" in check_cached(app, client, url)

    def rename():
        db.session.get(Vendor, w.vendor_id).name = "Renamed Vendor Ltd"
        db.session.get(User, w.admin_id).name = "Renamed Admin"

    committed(app, rename)
    page = check_cached(app, client, url)
    assert "Renamed Vendor Ltd" in page and "Renamed Admin" in page

    def settings():
        project = db.session.get(Project, w.project_id)
        project.retainage_release_allowed = not project.retainage_release_allowed

    committed(app, settings)
    check_cached(app, client, url)

    def change_order():
        commitment = db.session.get(Commitment, w.commitment_id)
        f.approve_change_order(commitment, db.session.get(SovLine, line_id), "5000")

    committed(app, change_order)
    check_cached(app, client, url)

    def submit():
        b = db.session.get(Billing, billing_id)
        wf.submit_billing(b, db.session.get(Contact, w.contact_id), b.version)

    committed(app, submit)
    assert "The billing team is reviewing it" in check_cached(app, client, url)

    def approve_as_noted():
        b = db.session.get(Billing, billing_id)
        admin = db.session.get(User, w.admin_id)
        reviews = {
            bl.id: wf.LineReview(
                "1000.00" if bl.sov_line_id == line_id else str(bl.claimed_work),
                str(bl.claimed_materials),
                LineStatus.APPROVED,
                "Measured on site" if bl.sov_line_id == line_id else "",
            )
            for bl in b.lines
        }
        wf.review_lines(b, admin, reviews, b.version)
        wf.approve_billing(b, admin, b.version)

    committed(app, approve_as_noted)
    page = check_cached(app, client, url)
    assert "Measured on site" in page

    # The next month: a billing of period 2 shows this one as previous work,
    # then the period's due date passes (its page says it is late).
    def next_month():
        commitment = db.session.get(Commitment, w.commitment_id)
        first = db.session.get(BillingPeriod, w.period1_id)
        first.status = PeriodStatus.CLOSED
        db.session.flush()
        period = f.make_period(
            first.project,
            first.sequence + 1,
            start=first.end_date + timedelta(days=1),
            due=w.today + timedelta(days=5),
        )
        contact = db.session.get(Contact, w.contact_id)
        return wf.create_billing(commitment, period, contact).id, period.due_date

    second_id, due = committed(app, next_month)
    second = f"/portal/billings/{second_id}"
    assert "1,000.00" in check_cached(app, client, second)
    assert "can no longer be submitted here" not in check_cached(app, client, second)
    clock.move_to(
        datetime.combine(due + timedelta(days=1), time(12), tzinfo=UTC), tick=False
    )
    auth.login_contact(w.contact_id)  # the session of a week ago has expired
    assert "can no longer be submitted here" in check_cached(app, client, second)
    check_cached(app, client, url)


def test_viewers_do_not_share_pages(app, client, auth, w, make_billing, issue):
    """Two contacts of one commitment: each sees their own name and token."""

    def second_contact():
        commitment = db.session.get(Commitment, w.commitment_id)
        other = f.make_contact(commitment.vendor, name="Second Person")
        commitment.contacts.append(other)
        return other.id

    other_id = committed(app, second_contact)
    billing_id = make_billing(w)
    url = f"/portal/billings/{billing_id}"
    auth.login_contact(w.contact_id)
    _, mine = cached_get(client, url)
    second = app.test_client()
    Auth(app, second).login_contact(other_id)
    state, theirs = cached_get(second, url)
    assert state == "miss"
    assert "Second Person" in theirs and "Second Person" not in mine
    token_mine = CSRF_INPUT.findall(mine)
    token_theirs = CSRF_INPUT.findall(theirs)
    assert token_mine and token_theirs and set(token_mine) != set(token_theirs)


def test_flashed_message_on_a_cached_page(app, client, auth, w, make_billing):
    billing_id = make_billing(w)
    url = f"/portal/billings/{billing_id}"
    auth.login_contact(w.contact_id)
    cached_get(client, url)
    with client.session_transaction() as sess:
        sess["_flashes"] = [("success", "A message for this request")]
    state, html = cached_get(client, url)
    assert state == "hit"
    assert "A message for this request" in html
    state, html = cached_get(client, url)
    assert "A message for this request" not in html


@pytest.mark.parametrize("app_config", [{"FRAGMENT_CACHE_BYTES": 0}])
def test_cache_off(app, client, auth, w, make_billing):
    billing_id = make_billing(w)
    auth.login_contact(w.contact_id)
    state, _ = cached_get(client, f"/portal/billings/{billing_id}")
    assert state == "off"


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_second_session_of_a_contact_posts_from_a_cached_page(
    app, client, auth, w, make_billing
):
    """Two sessions of one contact (two browsers): the second gets the page
    from the cache and its form still posts (its own session's token)."""
    billing_id = make_billing(w)
    url = f"/portal/billings/{billing_id}"
    auth.login_contact(w.contact_id)
    assert cached_get(client, url)[0] == "miss"
    other = app.test_client()
    Auth(app, other).login_contact(w.contact_id)
    state, html = cached_get(other, url)
    assert state == "hit"
    form = {
        "csrf_token": re.search(r'name="csrf_token" value="([^"]*)"', html)[1],
        "version": re.search(r'name="version" value="(\d+)"', html)[1],
        "action": "save",
    }
    response = other.post(url, data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert_no_token_cached(app)


def test_a_plain_view_sends_no_cookie(app, client, w, make_billing, issue):
    """Nothing in the session changed: no Set-Cookie (SESSION_REFRESH_EACH_REQUEST
    is off; the session's age is checked against its start)."""
    billing_id = make_billing(w)
    token = issue(w.contact_id)
    assert client.post(f"/portal/link/{token}").status_code == 302  # a real sign-in
    with client.session_transaction() as sess:
        assert sess.permanent
    client.get(f"/portal/billings/{billing_id}")
    response = client.get(f"/portal/billings/{billing_id}")
    assert response.headers.get(fragments.HEADER) == "hit"
    assert "Set-Cookie" not in response.headers
    assert app.config["PERMANENT_SESSION_LIFETIME"].total_seconds() >= 3600 * max(
        app.config["CONTACT_SESSION_HOURS"], app.config["STAFF_SESSION_HOURS"]
    )


def test_a_cached_view_runs_one_statement(app, client, w, make_billing, issue):
    """A contact signed in by a real link views a cached page: the contact,
    its link and the page's key come in one statement (portal.web.prefetch)."""
    billing_id = make_billing(w)
    token = issue(w.contact_id)
    assert client.post(f"/portal/link/{token}").status_code == 302  # a real sign-in
    url = f"/portal/billings/{billing_id}"
    assert cached_get(client, url)[0] == "miss"
    with counting(app) as statements:
        state, html = cached_get(client, url)
    assert state == "hit"
    assert len(statements) == 1, statements
    assert "own_billing" in statements[0] and "login_links" in statements[0]
    assert html == check_cached(app, client, url)


def test_the_prefetched_key_is_only_the_contacts_own(
    app, client, auth, w, make_billing, issue
):
    """Another contact's billing, cached for its own contact, is a 404 to a
    contact signed in by a real link; and the key read with a contact is never
    the key of the page it is not on, nor of another request."""
    with app.app_context():
        theirs = wf.create_billing(
            db.session.get(Commitment, w.other_commitment_id),
            db.session.get(BillingPeriod, w.period1_id),
            db.session.get(Contact, w.other_contact_id),
        ).id
        db.session.commit()
    other = app.test_client()
    Auth(app, other).login_contact(w.other_contact_id)
    assert cached_get(other, f"/portal/billings/{theirs}")[0] == "miss"
    assert cached_get(other, f"/portal/billings/{theirs}")[0] == "hit"
    mine = make_billing(w)
    token = issue(w.contact_id)
    assert client.post(f"/portal/link/{token}").status_code == 302
    response = client.get(f"/portal/billings/{theirs}")
    assert response.status_code == 404
    assert response.headers.get(fragments.HEADER) is None
    assert cached_get(client, f"/portal/billings/{mine}")[0] == "miss"
    # Signed out, the link's session reaches no page, cached or not.
    with client.session_transaction() as sess:
        link_id = sess["link"]
    with app.app_context():
        from portal.accounts import tokens

        tokens.end_link_session(w.contact_id, link_id)
        db.session.commit()
    assert client.get(f"/portal/billings/{mine}").status_code == 401
