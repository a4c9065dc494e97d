"""Polish without a browser (issue 8): badges, money by currency, error pages,
mails in text and HTML."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from markupsafe import escape

from portal.billing import invitations
from portal.core.statuses import (
    BADGE_COLOURS,
    BillingStatus,
    InvitationStatus,
    LineStatus,
)
from portal.extensions import db
from portal.models import BillingPeriod, Commitment, OutboxMessage, User
from portal.web.templating import badge, money

CSS = Path(__file__).resolve().parents[1] / "portal" / "static" / "app.css"
BOOTSTRAP = {
    "primary",
    "secondary",
    "success",
    "danger",
    "warning",
    "info",
    "light",
    "dark",
}
#: Every state the period dashboard shows per commitment (SPEC §2).
DASHBOARD_STATES = (
    ["no_billing_contact", "not_invited"]
    + [s.value for s in InvitationStatus]
    + [s.value for s in BillingStatus]
)


def test_every_status_has_a_badge_colour() -> None:
    for status in [*BillingStatus, *InvitationStatus, *LineStatus]:
        assert status.value in BADGE_COLOURS, status


def test_dashboard_states_are_told_apart_by_colour() -> None:
    colours = [BADGE_COLOURS[state] for state in DASHBOARD_STATES]
    assert len(set(colours)) == len(DASHBOARD_STATES) == 12


def test_custom_badge_colours_exist_in_the_stylesheet() -> None:
    css = CSS.read_text()
    for colour in set(BADGE_COLOURS.values()) - BOOTSTRAP:
        assert f".text-bg-{colour} " in css, colour


def test_badge_markup() -> None:
    html = str(badge("approved_as_noted"))
    assert html == (
        '<span class="badge text-bg-teal status-approved_as_noted">'
        "Approved as noted</span>"
    )
    assert "border" in str(badge("not_invited"))  # light badges get an edge
    assert "Revise &amp; resubmit" in str(badge("revise_and_resubmit"))


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [
        ("1234.5", "USD", "$1,234.50"),
        ("-1234.5", "USD", "-$1,234.50"),
        ("1234.5", "CAD", "$1,234.50"),
        ("0", "CAD", "$0.00"),
        ("999999999999.99", "USD", "$999,999,999,999.99"),
    ],
)
def test_money_by_project_currency(value: str, currency: str, text: str) -> None:
    assert money(Decimal(value), currency) == text


@pytest.fixture
def app_config() -> dict:
    return {"PROPAGATE_EXCEPTIONS": False}


def test_error_pages_are_friendly(app, client, auth, users) -> None:
    @app.route("/boom")
    def boom():
        raise RuntimeError("kaboom")

    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert '<h1 class="h3 mb-3">We couldn&#39;t find that page</h1>' in response.text
    assert 'href="/"' in response.text

    response = client.get("/boom")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.text
    assert "Nothing was saved" in response.text
    assert "kaboom" not in response.text and "Traceback" not in response.text

    auth.login_user(users["viewer"])
    response = client.get("/admin/users")
    assert response.status_code == 403
    assert "You don&#39;t have access to this page" in response.text
    assert "(viewer)" in response.text
    assert 'href="/admin/"' in response.text  # back to the dashboard

    response = client.get("/admin/logout")  # POST only
    assert response.status_code == 405
    assert "Method Not Allowed" in response.text


def test_invitation_mail_renders_as_text_and_html(app, world) -> None:
    """Both bodies carry the link; the HTML is table-based with inline styles."""
    with app.app_context():
        period = db.session.get(BillingPeriod, world.period1_id)
        commitment = db.session.get(Commitment, world.commitment_id)
        admin = db.session.get(User, world.admin_id)
        invitations.invite(period, [commitment], admin)
        db.session.commit()
        message = db.session.scalars(sa.select(OutboxMessage)).one()
        text, html = message.body_text, message.body_html
        db.session.remove()
    link = re.search(r"http://portal\.test/portal/link/\S+", text).group(0)
    assert html.count(link) == 2  # the button and the copyable address
    assert html.startswith("<!doctype html>")
    assert f"<title>{escape(message.subject)}</title>" in html
    assert message.subject.strip()
    assert 'role="presentation"' in html
    assert "<style" not in html and "<script" not in html and "class=" not in html
    assert "Hello Casey Contact," in text and "Hello Casey Contact," in html
    assert "Open my billing" in html


def test_mails_carry_the_contractor_s_name(app, world) -> None:
    """Issue 14 item 15: the mail header said "Progress Billings", not the
    contractor (``COMPANY_NAME``) the contact works for."""
    app.config["COMPANY_NAME"] = "Harbor Mechanical Ltd"
    with app.app_context():
        period = db.session.get(BillingPeriod, world.period1_id)
        commitment = db.session.get(Commitment, world.commitment_id)
        admin = db.session.get(User, world.admin_id)
        invitations.invite(period, [commitment], admin)
        db.session.commit()
        html = db.session.scalars(sa.select(OutboxMessage.body_html)).one()
        db.session.remove()
    header = re.search(r'border-radius:6px 6px 0 0;">(.*?)<div', html).group(1)
    assert header == "Harbor Mechanical Ltd"
    assert "on the Harbor Mechanical Ltd billing portal." in html
    assert ">Progress Billings<" not in html


def test_every_time_is_shown_in_one_format_labelled_with_its_zone(
    app, client, auth, world
) -> None:
    """Issue 14 item 10: the contact saw "14:27 EST", admin lists "19:27 UTC",
    the dashboard "Dec 01, 19:27" with no zone. Now one format everywhere, in
    the project's zone on its pages, else the contractor's TIME_ZONE."""
    from datetime import UTC, datetime

    from portal import timeutil
    from portal.billing import billings, drafts
    from portal.models import Billing, Contact, Project

    moment = datetime(2026, 12, 1, 19, 27, tzinfo=UTC)
    assert timeutil.display(moment, "America/New_York") == "Dec 01, 2026 14:27 EST"
    assert timeutil.display(moment, None) == "Dec 01, 2026 19:27 UTC"
    assert timeutil.display(moment, "No/Such_Zone") == "Dec 01, 2026 19:27 UTC"
    with app.app_context():
        project = db.session.get(Project, world.project_id)
        project.time_zone = "America/New_York"
        contact = db.session.get(Contact, world.contact_id)
        commitment = db.session.get(Commitment, world.commitment_id)
        period = db.session.get(BillingPeriod, world.period1_id)
        billing = billings.create_billing(commitment, period, contact)
        line = billing.lines[0]
        billings.save_billing(
            billing,
            contact,
            billings.BillingInput(lines={line.sov_line_id: ("1000.00", "")}),
            billing.version,
        )
        billings.submit_billing(billing, contact, billing.version)
        db.session.commit()
        billing_id = billing.id
        submitted = db.session.get(Billing, billing_id).submitted_at
        shown = drafts.local_time(submitted, project)
        db.session.remove()
    assert shown.endswith((" EST", " EDT"))
    auth.login_user(world.admin_id)
    for url in ("/admin/", "/admin/billings", f"/admin/billings/{billing_id}"):
        page = client.get(url).get_data(as_text=True)
        assert shown in page, url
    audit = client.get("/admin/audit").get_data(as_text=True)
    assert " UTC</td>" in audit and "(UTC)" not in audit
    auth.login_contact(world.contact_id)
    assert shown in client.get(f"/portal/billings/{billing_id}").get_data(as_text=True)
