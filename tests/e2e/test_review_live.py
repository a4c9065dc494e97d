"""The review recomputes as the reviewer types (issue 14 item 7), at 1280 and
375 px: the G703 row and the G702's approved column and difference follow the
approved amounts with the contact form's engine, the figures equal what the
server then saves, and a changed line asks for its reason."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from portal.billing import figures
from portal.extensions import db
from portal.models import Billing
from portal.web.templating import money

from .test_screenshots import seed_demo

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("width", [1280, 375])
def test_the_review_recomputes_while_typing(
    app, live_server, new_context, width
) -> None:
    data = seed_demo(app)
    page = new_context().new_page()
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(live_server + "/admin/login")
    page.get_by_label("Email").fill(data["admin_email"])
    page.get_by_label("Password").fill(data["admin_password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".alert-success")).to_contain_text("Welcome back")
    page.goto(f"{live_server}/admin/billings/{data['billing_id']}")

    def approved(key: str):
        return page.locator(f"#g702-{key} td.approved")

    before = approved("current_payment_due").inner_text()
    work = page.get_by_label("Approved work, line 4")
    work.fill("45,000.00")  # claimed 48,000.00
    row = page.locator("#line-4")
    expect(row).to_have_class("table-warning")
    reason = page.get_by_label("Reason, line 4")
    expect(reason).to_have_attribute("aria-required", "true")
    expect(approved("current_payment_due")).not_to_have_text(before)
    shown = {
        key: approved(key).inner_text()
        for key in ("total_completed_and_stored", "retainage", "current_payment_due")
    }
    difference = page.locator("#g702-total_completed_and_stored td.difference")
    expect(difference).to_have_text("-$3,000.00")
    g_line_4 = row.locator('[data-col="g"]').inner_text()

    # Saving without the reason is refused at the line; with it, the server
    # computes exactly what the page showed.
    page.get_by_role("button", name="Save review").click()
    expect(page.locator("#line-4")).to_contain_text(
        "Say why the approved amount differs from the claim."
    )
    page.get_by_label("Reason, line 4").fill("Level 2 slab pour is 90% done.")
    page.get_by_role("button", name="Save review").click()
    expect(page.locator(".alert-success")).to_be_visible()
    with app.app_context():
        billing = db.session.get(Billing, data["billing_id"])
        sheet = figures.sheet(billing, "approved")
        currency = billing.commitment.project.currency
        saved = {key: money(getattr(sheet.totals, key), currency) for key in shown}
        row4 = next(r for r in sheet.rows if r.sov.line_number == 4)
        saved_g = money(row4.figures.total_completed_and_stored, currency)
        db.session.remove()
    assert shown == saved
    assert g_line_4 == saved_g
    # Back to the claim: no longer marked, the reason is not required.
    page.get_by_label("Approved work, line 4").fill("48,000.00")
    expect(page.locator("#line-4")).not_to_have_class("table-warning")
    expect(page.get_by_label("Reason, line 4")).to_have_attribute(
        "aria-required", "false"
    )
    expect(difference).to_have_text("")
