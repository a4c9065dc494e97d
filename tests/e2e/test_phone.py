"""The contact's billing form on a 375-px phone (issue 14 item 6), and at 1280:
an 8-line schedule was 6,500 px of cards whose labels broke mid-word, saving
jumped back to the top and a refused save did not say which lines were wrong.

At 375 px each line is a compact card (the same inputs as the table), nothing
scrolls sideways, a bar with the live payment due stays on screen, a save
comes back at the line the contact was on, and a refused save lists the lines
in error with links to them. At 1280 px the G703 stays a table. Every mail
fits a 375-px screen."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from portal.billing import billings, invitations
from portal.billing.billings import LineReview
from portal.core.statuses import LineStatus
from portal.extensions import db
from portal.models import Billing, Invitation, OutboxMessage

from .. import factories as f
from .a11y import A11y
from .conftest import ARTIFACTS
from .nu import NuChecker
from .outbox import sign_in_contact

pytestmark = [pytest.mark.e2e, pytest.mark.calendar]

PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
LINES = [
    ("03-300", "Cast-in-place concrete, foundations and slabs", "80000.00"),
    ("05-120", "Structural steel framing", "120000.00"),
    ("07-210", "Thermal insulation", "15000.00"),
    ("08-110", "Hollow metal doors and frames", "22000.00"),
    ("09-290", "Gypsum board assemblies, levels 1 to 12", "64000.00"),
    ("22-100", "Plumbing piping", "48000.00"),
    ("26-050", "Electrical rough-in", "56000.00"),
    ("31-230", "Excavation and fill", "30000.00"),
]


def _seed(app, today, revise: bool = False) -> dict:
    """An 8-line commitment and its draft (``revise``: submitted, two lines sent
    back for revision, with stored materials on one of them)."""
    with app.app_context():
        project = f.make_project(name="Harbor Tower")
        vendor = f.make_vendor(name="Alpha Construction")
        contact = f.make_contact(vendor, name="Anna Alvarez")
        commitment = f.make_commitment(
            project, vendor, [(code, value) for code, _, value in LINES], [contact]
        )
        for sov, (_, description, _) in zip(commitment.sov_lines, LINES, strict=True):
            sov.description = description
        period = f.make_period(
            project, start=today.replace(day=1), due=today + timedelta(days=10)
        )
        billing = billings.create_billing(commitment, period, contact)
        if revise:
            admin = f.make_user("admin")
            by_number = {bl.sov_line.line_number: bl for bl in billing.lines}
            billings.save_billing(
                billing,
                contact,
                billings.BillingInput(
                    lines={
                        by_number[1].sov_line_id: ("20000.00", "5000.00"),
                        by_number[5].sov_line_id: ("9000.00", "0"),
                    },
                    vendor_invoice_number="A-7",
                    notes="",
                ),
                billing.version,
            )
            billings.submit_billing(billing, contact, billing.version)
            reviews = {
                bl.id: LineReview(
                    str(bl.claimed_work),
                    str(bl.claimed_materials),
                    LineStatus.REVISE if n in (1, 5) else LineStatus.APPROVED,
                    "Measured on site: less than claimed." if n in (1, 5) else "",
                )
                for n, bl in by_number.items()
            }
            billings.review_lines(billing, admin, reviews, billing.version)
            billings.send_back(billing, admin, billing.version)
        db.session.commit()
        out = {
            "contact_id": contact.id,
            "billing_id": billing.id,
            "sov_ids": [sov.id for sov in commitment.sov_lines],
        }
        db.session.remove()
    return out


def _open(app, live_server, new_context, data, viewport):
    page = new_context().new_page()
    page.set_viewport_size(viewport)
    sign_in_contact(page, app, data["contact_id"])
    page.goto(f"{live_server}/portal/billings/{data['billing_id']}")
    return page


def _scroll_width(page) -> int:
    return page.evaluate("document.scrollingElement.scrollWidth")


IN_VIEW = """(sel) => {
    const box = document.querySelector(sel).getBoundingClientRect();
    const bar = document.getElementById('billing-bar');
    const limit = bar ? bar.getBoundingClientRect().top : window.innerHeight;
    return box.top >= 0 && box.top < limit && box.height > 0;
}"""


def _in_view(page, selector: str) -> bool:
    """Whether the element is on screen (and not under the bottom bar), once
    a (smooth) scroll has ended: waits for it, up to 5 s."""
    try:
        page.wait_for_function(IN_VIEW, arg=selector, timeout=5000)
    except PlaywrightTimeout:
        return False
    return True


def _bar_in_view(page) -> bool:
    return page.evaluate(
        """() => {
            const box = document.getElementById('billing-bar').getBoundingClientRect();
            return box.top >= 0 && box.bottom <= window.innerHeight + 0.5 && box.height > 0;
        }"""
    )


def _card_heights(page) -> list[float]:
    return page.evaluate(
        "[...document.querySelectorAll('#g703 tbody tr')]"
        ".map(r => r.getBoundingClientRect().height)"
    )


def test_the_phone_form_is_compact_live_and_keeps_its_place(
    app, live_server, new_context, today
) -> None:
    data = _seed(app, today)
    page = _open(app, live_server, new_context, data, PHONE)
    a11y, nu = A11y(), NuChecker("phone-billing")
    nu.watch(page)
    sov = data["sov_ids"]

    # One card per line, no table to scroll sideways, compact.
    assert _scroll_width(page) <= PHONE["width"]
    expect(page.locator("#g703 thead")).to_be_hidden()
    displays = page.evaluate(
        "[...document.querySelectorAll('#g703 tbody tr')]"
        ".map(r => getComputedStyle(r).display)"
    )
    assert displays == ["grid"] * 8
    heights = _card_heights(page)
    page.screenshot(path=str(ARTIFACTS / "phone-billing-375.png"), full_page=True)
    assert max(heights) < 260, heights
    assert page.locator("#g703").bounding_box()["height"] < 2600
    # The card holds the line, what to enter and its result.
    card = page.locator(f"#line-{sov[6]}")
    expect(card).to_contain_text("Electrical rough-in")
    expect(card).to_contain_text("$56,000.00")
    for label in (
        "Line 7 work completed this period",
        "Line 7 new materials stored this period",
    ):
        box = page.get_by_label(label).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    # No label breaks inside a word: each label is one line or breaks at a space.
    broken = page.evaluate(
        """() => [...document.querySelectorAll('#g703 tbody td[data-label]')]
            .filter(td => getComputedStyle(td, '::before').wordBreak !== 'normal'
                          || getComputedStyle(td, '::before').overflowWrap !== 'normal')
            .map(td => td.dataset.label)"""
    )
    assert broken == []
    a11y.check(page, "billing at 375")
    nu.check(page, "billing at 375")

    # The bar shows the payment due as it is typed, and stays in view.
    due = page.locator("#bar-due")
    expect(due).to_have_text("$0.00")
    page.get_by_label("Line 7 work completed this period").fill("10,000.00")
    # 10,000.00 less 10% retainage.
    expect(due).to_have_text("$9,000.00")
    expect(page.locator("#bar-work")).to_have_text("$10,000.00")
    assert _bar_in_view(page)
    page.evaluate(
        "window.scrollTo({top: document.scrollingElement.scrollHeight, behavior: 'instant'})"
    )
    assert page.evaluate("window.scrollY") > 2000
    assert _bar_in_view(page)
    page.evaluate("window.scrollTo({top: 0, behavior: 'instant'})")
    assert _bar_in_view(page)
    assert _scroll_width(page) <= PHONE["width"]

    # Save from the bar while on line 6: the saved page opens at line 6.
    page.get_by_label("Line 6 work completed this period").fill("4,000.00")
    page.locator(f"#line-{sov[5]}").scroll_into_view_if_needed()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#bar-status")).to_contain_text("Draft saved")
    assert page.url.endswith(f"#line-{sov[5]}")
    assert _in_view(page, f"#line-{sov[5]}")
    assert page.evaluate("window.scrollY") > 500
    expect(due).to_have_text("$12,600.00")
    with app.app_context():
        works = sorted(
            str(bl.claimed_work)
            for bl in db.session.get(Billing, data["billing_id"]).lines
        )
        db.session.remove()
    assert works[-2:] == ["10000.00", "4000.00"]

    # A refused save lists the lines in error; each link goes to its field.
    page.get_by_label("Line 3 work completed this period").fill("12x")
    page.get_by_label("Line 8 new materials stored this period").fill("-5")
    page.get_by_role("button", name="Save", exact=True).click()
    errors = page.locator("#form-errors a")
    expect(errors).to_have_count(2)
    expect(page.locator("#form-message")).to_contain_text("2 lines to correct")
    expect(errors.nth(0)).to_contain_text("Line 3 Thermal insulation")
    expect(errors.nth(1)).to_contain_text("Line 8 Excavation and fill")
    assert page.evaluate("window.scrollY") < 200  # the list is at the top
    assert _scroll_width(page) <= PHONE["width"]
    nu.check(page, "refused save at 375")
    errors.nth(1).click()
    assert page.url.endswith(f"#line-{sov[7]}-materials")
    assert _in_view(page, f"#line-{sov[7]}-materials")
    # The message stays beside the field, in the line's card.
    beside = page.locator(f"#line-{sov[7]} #line-{sov[7]}-materials-error")
    expect(beside).to_contain_text("cannot be negative")
    assert _in_view(page, f"#line-{sov[7]}-materials-error")
    errors.nth(0).click()
    assert _in_view(page, f"#line-{sov[2]}-work")
    a11y.assert_clean()
    nu.assert_clean()


def test_revise_mode_on_a_phone_is_compact_too(
    app, live_server, new_context, today
) -> None:
    data = _seed(app, today, revise=True)
    page = _open(app, live_server, new_context, data, PHONE)
    sov = data["sov_ids"]
    expect(page.locator(f"#line-{sov[0]}")).to_contain_text("Measured on site")
    assert _scroll_width(page) <= PHONE["width"]
    heights = _card_heights(page)
    page.screenshot(path=str(ARTIFACTS / "phone-revise-375.png"), full_page=True)
    assert max(heights) < 380, heights
    assert page.locator("#g703").bounding_box()["height"] < 3200
    # Stored materials: the line that has some shows them (before and now).
    expect(page.locator(f"#line-{sov[0]} .sov-before")).to_be_visible()
    expect(page.locator(f"#line-{sov[0]} .sov-stored")).to_have_text(
        re.compile(r"\$5,000\.00")
    )
    expect(page.locator(f"#line-{sov[0]} .sov-stored")).to_be_visible()
    expect(page.locator(f"#line-{sov[1]} .sov-before")).to_be_hidden()
    a11y = A11y()
    a11y.check(page, "revise at 375")
    a11y.assert_clean()


def test_at_1280_the_schedule_stays_a_table(app, live_server, new_context, today):
    data = _seed(app, today)
    page = _open(app, live_server, new_context, data, DESKTOP)
    expect(page.locator("#g703 thead")).to_be_visible()
    displays = page.evaluate(
        "[...document.querySelectorAll('#g703 tbody tr')]"
        ".map(r => getComputedStyle(r).display)"
    )
    assert displays == ["table-row"] * 8
    expect(page.locator("#g703 thead th")).to_have_count(13)
    page.screenshot(path=str(ARTIFACTS / "phone-billing-1280.png"), full_page=True)
    assert _scroll_width(page) <= DESKTOP["width"]
    # The live bar and the place after a save work here too.
    page.get_by_label("Line 2 work completed this period").fill("20,000.00")
    expect(page.locator("#bar-due")).to_have_text("$18,000.00")
    assert _bar_in_view(page)
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator("#bar-status")).to_contain_text("Draft saved")
    assert page.url.endswith("#details")
    assert _in_view(page, "#details")
    a11y = A11y()
    a11y.check(page, "billing at 1280")
    a11y.assert_clean()


MAILS = Path(__file__).resolve().parents[2] / "templates" / "mail"


def _every_mail(app, today) -> dict[str, str]:
    """One mail of each kind, from the workflow itself, with long names: {kind: html}."""
    with app.app_context():
        admin = f.make_user("admin", email="accounts.payable.department@example.com")
        project = f.make_project(
            name="Harbor Tower Redevelopment, Phase Two (North Block)"
        )
        vendor = f.make_vendor(name="Alpha Electrical and Mechanical Contractors Ltd")
        contact = f.make_contact(
            vendor,
            name="Anna Alvarez",
            email="anna.alvarez.billing@alpha-electrical.example.com",
        )
        other = f.make_contact(vendor, name="Ben Brown")
        commitment = f.make_commitment(
            project, vendor, [("26-100", "40000.00"), ("26-500", "25000.00")], [contact]
        )
        second = f.make_commitment(project, vendor, [("26-900", "10000.00")], [other])
        period = f.make_period(
            project, start=today.replace(day=1), due=today + timedelta(days=10)
        )
        invitations.invite(period, [commitment, second], admin)
        db.session.flush()
        declined = db.session.scalars(
            sa.select(Invitation).where(Invitation.contact_id == other.id)
        ).one()
        invitations.answer(declined, other, False, "No deliveries this month")
        mine = db.session.scalars(
            sa.select(Invitation).where(Invitation.contact_id == contact.id)
        ).one()
        mine.sent_at = mine.sent_at - timedelta(days=2)
        assert invitations.remind([mine], admin) == 1
        invitations.send_fresh_link(contact)
        billing = billings.create_billing(commitment, period, contact)
        billings.save_billing(
            billing,
            contact,
            billings.BillingInput(
                lines={bl.sov_line_id: ("1000.00", "0") for bl in billing.lines},
                vendor_invoice_number="A-1",
                notes="",
            ),
            billing.version,
        )
        billings.submit_billing(billing, contact, billing.version)
        first = billing.lines[0]
        billings.review_lines(
            billing,
            admin,
            {
                first.id: LineReview(
                    "1000.00", "0", LineStatus.REVISE, "Show the tickets."
                )
            },
            billing.version,
        )
        billings.send_back(
            billing, admin, billing.version, "Please attach the tickets."
        )
        billings.save_billing(
            billing,
            contact,
            billings.BillingInput(lines={}, vendor_invoice_number="A-1", notes=""),
            billing.version,
        )
        billings.submit_billing(billing, contact, billing.version)
        billings.review_lines(
            billing,
            admin,
            {
                bl.id: LineReview("1000.00", "0", LineStatus.APPROVED)
                for bl in billing.lines
            },
            billing.version,
        )
        billings.approve_billing(billing, admin, billing.version)
        db.session.commit()
        out = {}
        for message in db.session.scalars(
            sa.select(OutboxMessage).order_by(OutboxMessage.id)
        ):
            out.setdefault(message.kind, message.body_html)
        db.session.remove()
    return out


def test_every_mail_fits_a_phone(app, new_context, today) -> None:
    """The mails have no horizontal scroll at 375 px (the invite's bare link
    made it 579 px wide): tables are fluid, buttons wrap, long links break."""
    mails = _every_mail(app, today)
    kinds = {p.stem for p in MAILS.glob("*.html") if not p.stem.startswith("_")}
    assert set(mails) == kinds
    page = new_context().new_page()
    page.set_viewport_size(PHONE)
    for kind, html in sorted(mails.items()):
        page.set_content(html)
        width = _scroll_width(page)
        page.screenshot(path=str(ARTIFACTS / f"phone-mail-{kind}.png"), full_page=True)
        assert width <= PHONE["width"], (kind, width)
        # A printed link is still whole (the text only wraps).
        text = page.evaluate("document.body.innerText")
        if "/portal/link/" in text:
            assert re.search(r"https?://\S+/portal/link/\S{40,}", text), kind
