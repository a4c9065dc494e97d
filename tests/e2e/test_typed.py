"""Nothing typed is lost (issue 14 item 3), in the browser at 1280 and 375 px:
amounts, an invoice number and notes typed, then Upload (which reloads the
page): the page comes back with the file and with what was typed, says it is
not saved yet, and Save draft keeps it. Leaving by a link with unsaved
changes asks first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fpdf import FPDF
from playwright.sync_api import expect

from portal.billing import billings
from portal.extensions import db
from portal.models import Billing

from .. import factories as f
from .outbox import sign_in_contact

pytestmark = [pytest.mark.e2e, pytest.mark.calendar]


def _seed(app, today) -> dict:
    with app.app_context():
        project = f.make_project(name="Harbor Tower")
        vendor = f.make_vendor(name="Alpha Electric")
        contact = f.make_contact(vendor, name="Anna Alvarez")
        commitment = f.make_commitment(
            project,
            vendor,
            [("26-100", "40000.00"), ("26-500", "25000.00"), ("26-900", "10000.00")],
            [contact],
        )
        period = f.make_period(
            project, start=today.replace(day=1), due=today + timedelta(days=10)
        )
        billing = billings.create_billing(commitment, period, contact)
        db.session.commit()
        out = {"contact_id": contact.id, "billing_id": billing.id}
        db.session.remove()
    return out


def _pdf(tmp_path) -> str:
    doc = FPDF()
    doc.add_page()
    doc.set_font("Helvetica", size=14)
    doc.cell(text="Alpha Electric - Invoice A-1001")
    path = tmp_path / "invoice.pdf"
    path.write_bytes(bytes(doc.output()))
    return str(path)


@pytest.mark.parametrize("width", [1280, 375])
def test_upload_keeps_what_was_typed(
    app, live_server, new_context, today, tmp_path, width
) -> None:
    data = _seed(app, today)
    page = new_context().new_page()
    page.set_viewport_size({"width": width, "height": 900})
    sign_in_contact(page, app, data["contact_id"])
    url = f"{live_server}/portal/billings/{data['billing_id']}"
    page.goto(url)
    page.get_by_label("Line 1 work completed this period").fill("12,000.00")
    page.get_by_label("Line 3 work completed this period").fill("2,500.00")
    page.get_by_label("Your invoice number").fill("A-1001")
    page.get_by_label("Notes for the reviewer").fill("Rough-in on levels 1-3.")
    page.get_by_label("File (PDF").set_input_files(_pdf(tmp_path))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#attachments")).to_contain_text("invoice.pdf")
    # Back with the file, and with what was typed (not saved yet: it says so).
    expect(page.locator("#typed-restored")).to_contain_text("not saved yet")
    expect(page.get_by_label("Line 1 work completed this period")).to_have_value(
        "12,000.00"
    )
    expect(page.get_by_label("Line 3 work completed this period")).to_have_value(
        "2,500.00"
    )
    expect(page.get_by_label("Your invoice number")).to_have_value("A-1001")
    expect(page.get_by_label("Notes for the reviewer")).to_have_value(
        "Rough-in on levels 1-3."
    )
    with app.app_context():
        saved = db.session.get(Billing, data["billing_id"])
        assert saved.vendor_invoice_number == ""  # the upload saved nothing else
        db.session.remove()

    # Leaving by a link with unsaved changes asks first; staying keeps them.
    asked = []

    def on_dialog(dialog) -> None:
        asked.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.get_by_label("Notes for the reviewer").press("End")
    page.get_by_label("Notes for the reviewer").type(" Photos attached.")
    page.locator("nav[aria-label=breadcrumb] a").first.click()
    page.wait_for_timeout(300)
    assert asked == ["beforeunload"]
    assert page.url.split("#")[0] == url
    page.remove_listener("dialog", on_dialog)

    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".alert-success")).to_be_visible()
    with app.app_context():
        saved = db.session.get(Billing, data["billing_id"])
        assert saved.vendor_invoice_number == "A-1001"
        assert saved.notes == "Rough-in on levels 1-3. Photos attached."
        works = sorted(str(bl.claimed_work) for bl in saved.lines)
        assert works == ["0.00", "12000.00", "2500.00"]
        db.session.remove()
    # Saved: a reload restores nothing and leaving asks nothing.
    page.reload()
    expect(page.locator("#typed-restored")).to_have_count(0)
    page.locator("nav[aria-label=breadcrumb] a").first.click()
    expect(page).not_to_have_url(url)
