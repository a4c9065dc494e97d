"""The whole product in one browser journey (issue 8), against the served app.

An admin creates a period and invites two commitments; the first contact bills
(a work line, a materials line, a PDF attachment) and submits; the admin sends
one line back with a reason; the contact corrects and resubmits; the admin
adjusts an amount and approves (approved as noted); the second contact
declines; the admin generates the upstream claim and downloads its PDF; finance
exports an IIF batch and downloads it.

Every money figure read on a page is compared with the money engine's value
for the same database rows (``portal.billing.figures`` / ``portal.upstream``),
formatted by the same ``money`` filter. axe-core checks every page visited.
"""

from __future__ import annotations

import io
import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fpdf import FPDF
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from portal import upstream
from portal.billing import figures
from portal.core.statuses import BillingStatus, InvitationStatus
from portal.extensions import db
from portal.models import (
    Attachment,
    Billing,
    ClientClaim,
    ErpSettings,
    ExportBatch,
    Invitation,
)
from portal.web.templating import money

from .. import factories as f
from ..clock import pinned_today
from .a11y import A11y
from .nu import NuChecker
from .outbox import magic_link

pytestmark = [pytest.mark.e2e, pytest.mark.calendar]

ADMIN_PASSWORD = "journey admin pass 2024"
FINANCE_PASSWORD = "journey finance pass 2024"
D = Decimal


def seed(app) -> dict:
    """The data an admin would have set up: users, project, two commitments."""
    with app.app_context():
        admin = f.make_user("admin", "ada.admin@example.com", ADMIN_PASSWORD)
        admin.name = "Ada Admin"
        finance = f.make_user("finance", "fin.finance@example.com", FINANCE_PASSWORD)
        finance.name = "Finn Finance"
        project = f.make_project(
            number="2040",
            name="Harbor Tower",
            currency="USD",
            erp_job_number="2040",
            qb_customer_job="Harbor Holdings:Harbor Tower",
        )
        alpha = f.make_vendor(name="Alpha Electric", erp_vendor_code="ALPHA")
        anna = f.make_contact(alpha, name="Anna Alvarez", email="anna@alpha.example")
        beta = f.make_vendor(name="Beta Concrete", erp_vendor_code="BETA")
        ben = f.make_contact(beta, name="Ben Baker", email="ben@beta.example")
        first = f.make_commitment(
            project,
            alpha,
            [("26-100", "40000.00"), ("26-500", "25000.00"), ("26-900", "10000.00")],
            [anna],
            work_pct="10",
            materials_pct="5",
            number="SC-101",
            title="Electrical",
        )
        for line, text in zip(
            first.sov_lines,
            ["Rough-in wiring", "Light fixtures", "Testing"],
            strict=True,
        ):
            line.description = text
        second = f.make_commitment(
            project,
            beta,
            [("03-300", "50000.00")],
            [ben],
            number="SC-202",
            title="Concrete",
        )
        second.sov_lines[0].description = "Slabs"
        contract = f.make_client_contract(
            project,
            [("26-100", "45000.00"), ("26-500", "30000.00"), ("26-900", "12000.00")],
            markup="5",
            work_pct="10",
            materials_pct="10",
        )
        contract.number = "HC-2040"
        contract.title = "Harbor Tower prime contract"
        db.session.add(
            ErpSettings(
                id=1,
                ap_account="Accounts Payable",
                retainage_payable_account="Retainage Payable",
                default_expense_account="Job Costs:Subcontracts",
                default_sage_category="S",
            )
        )
        db.session.commit()
        ids = {
            "project_id": project.id,
            "admin_email": admin.email,
            "finance_email": finance.email,
            "anna": anna.email,
            "ben": ben.email,
            "first_id": first.id,
            "second_id": second.id,
            "contract_id": contract.id,
        }
        db.session.remove()
    return ids


def tiny_pdf() -> bytes:
    """A real one-page PDF: the vendor's invoice."""
    doc = FPDF()
    doc.add_page()
    doc.set_font("Helvetica", size=14)
    doc.cell(text="Alpha Electric - Invoice A-1001")
    return bytes(doc.output())


def billing_of(app, commitment_id: int) -> dict:
    """The commitment's live billing and its claimed/approved G702 totals."""
    with app.app_context():
        billing = db.session.scalars(
            sa.select(Billing).where(
                Billing.commitment_id == commitment_id,
                Billing.status != BillingStatus.VOID,
            )
        ).one()
        claimed = figures.sheet(billing, "claimed")
        approved = figures.sheet(billing, "approved")
        out = {
            "id": billing.id,
            "status": billing.status,
            "revision": billing.revision,
            "claimed": claimed.totals,
            "approved": approved.totals,
            # E + F of the lines (the batch export's figure).
            "claimed_period": this_period(claimed),
            "approved_period": this_period(approved),
            "attachments": len(billing.attachments),
        }
        db.session.remove()
    return out


def this_period(sheet) -> Decimal:
    """Work this period plus materials presently stored, over the sheet's lines."""
    return sum(
        (r.figures.work_this_period + r.figures.materials_stored for r in sheet.rows),
        D("0.00"),
    )


def sign_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(base + "/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".alert-success")).to_contain_text("Welcome back")


def cash(value: Decimal) -> str:
    """A figure as the pages show it (the project is in USD)."""
    return money(value, "USD")


def test_journey(app, live_server, new_context, shots) -> None:
    started = time.monotonic()
    base = live_server
    ids = seed(app)
    a11y = A11y()
    nu = NuChecker("journey")

    def visit(page: Page, name: str) -> None:
        """Screenshot the step; check the page's accessibility and its HTML."""
        shots(name, page)
        a11y.check(page, name)
        nu.check(page, name)

    def new_page() -> Page:
        page = new_context().new_page()
        nu.watch(page)
        return page

    admin = new_page()
    admin.on("dialog", lambda dialog: dialog.accept())

    # --- 1. The admin signs in and creates a billing period ------------------
    admin.goto(base + "/admin/")
    expect(admin.get_by_role("heading", name="Sign in")).to_be_visible()
    visit(admin, "admin-login")
    sign_in(admin, base, ids["admin_email"], ADMIN_PASSWORD)
    visit(admin, "admin-dashboard")

    admin.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Periods"
    ).click()
    visit(admin, "periods-empty")
    admin.get_by_role("link", name="New period").click()
    today = pinned_today()
    admin.get_by_role("combobox", name="Project").select_option(
        label="2040 · Harbor Tower"
    )
    for label, days in (
        ("From", -10),
        ("To", 20),
        ("Due date", 15),
        ("Billing date", 20),
    ):
        admin.get_by_role("textbox", name=label, exact=True).fill(
            (today + timedelta(days=days)).isoformat()
        )
    admin.get_by_label("Open it now").check()
    visit(admin, "period-form")
    admin.get_by_role("button", name="Save period").click()
    expect(admin.locator(".alert-success")).to_contain_text(
        "Period #1 created and opened"
    )
    visit(admin, "periods")

    # --- 2. Invite both commitments from the period dashboard (bulk) ---------
    admin.get_by_role("table").get_by_role("link", name="Dashboard").click()
    expect(admin.get_by_role("heading", level=1)).to_contain_text("period #1")
    expect(admin.locator(f"#row-{ids['first_id']}")).to_have_attribute(
        "data-state", "not_invited"
    )
    visit(admin, "period-dashboard-before")
    admin.get_by_label("Select all").check()
    admin.get_by_role("button", name="Send Invite to Bill").click()
    expect(admin.locator(".alert-success")).to_contain_text(
        "Invite to Bill sent to 2 contact(s)"
    )
    for cid in (ids["first_id"], ids["second_id"]):
        expect(admin.locator(f"#row-{cid}")).to_have_attribute("data-state", "invited")
    visit(admin, "period-dashboard-invited")
    dashboard_url = admin.url

    # --- 3. The first contact opens the emailed link and confirms -----------
    contact = new_page()
    contact.on("dialog", lambda dialog: dialog.accept())
    contact.goto(magic_link(app, ids["anna"]))
    expect(
        contact.get_by_role("heading", name="Continue as Anna Alvarez")
    ).to_be_visible()
    visit(contact, "contact-link-confirm")
    contact.get_by_role("button", name="Continue").click()
    expect(contact.locator(".alert-success")).to_contain_text("Welcome, Anna Alvarez")
    visit(contact, "contact-home")

    # --- 4. ...fills a work line and a materials line, attaches, submits -----
    contact.get_by_role("button", name="Start progress billing").click()
    expect(contact.get_by_role("heading", level=1)).to_contain_text(
        "Progress billing #1"
    )
    contact.get_by_label("Line 1 work completed this period").fill("12,500.00")
    contact.get_by_label("Line 2 new materials stored this period").fill("4000")
    contact.get_by_label("Your invoice number").fill("A-1001")
    visit(contact, "contact-billing-filled")
    contact.get_by_role("button", name="Save draft").click()
    expect(contact.locator(".alert-success")).to_contain_text("Draft saved")
    b = billing_of(app, ids["first_id"])
    assert b["status"] == BillingStatus.DRAFT
    summary = contact.locator("#g702")
    expect(summary.locator('[data-summary="total_completed_and_stored"]')).to_have_text(
        cash(b["claimed"].total_completed_and_stored)
    )
    assert b["claimed"].total_completed_and_stored == D("16500.00")
    expect(summary.locator('[data-summary="retainage"]')).to_have_text(
        cash(b["claimed"].retainage)
    )
    expect(summary.locator('[data-summary="current_payment_due"]')).to_have_text(
        cash(b["claimed"].current_payment_due)
    )
    assert b["claimed"].current_payment_due == D("15050.00")  # 16,500 − 1,250 − 200

    contact.get_by_label("What is it?").select_option(label="Invoice")
    contact.get_by_label(re.compile(r"^File")).set_input_files(
        files=[
            {
                "name": "invoice-A-1001.pdf",
                "mimeType": "application/pdf",
                "buffer": tiny_pdf(),
            }
        ]
    )
    contact.get_by_role("button", name="Upload").click()
    expect(contact.locator(".alert-success")).to_contain_text("invoice-A-1001.pdf")
    expect(contact.get_by_role("link", name="invoice-A-1001.pdf")).to_be_visible()
    visit(contact, "contact-billing-attached")
    contact.get_by_role("button", name="Submit for review").click()
    expect(contact.locator(".alert-success")).to_contain_text("submitted")
    expect(
        contact.locator("h1 + .badge, .badge.status-under_review").first
    ).to_have_text("Under review")
    visit(contact, "contact-billing-submitted")
    b = billing_of(app, ids["first_id"])
    assert (b["status"], b["revision"], b["attachments"]) == ("under_review", 0, 1)
    with app.app_context():
        stored = db.session.scalars(sa.select(Attachment)).one()
        assert stored.original_name == "invoice-A-1001.pdf"
        assert stored.content_type == "application/pdf"
        db.session.remove()

    # --- 5. The admin marks line 1 `revise` with a reason and sends it back --
    admin.goto(dashboard_url)
    row = admin.locator(f"#row-{ids['first_id']}")
    expect(row).to_have_attribute("data-state", "under_review")
    # Under review, the dashboard's money is the claim's G702 (line 8).
    expect(admin.locator("#total-current-payment-due")).to_have_text(
        cash(b["claimed"].current_payment_due)
    )
    visit(admin, "period-dashboard-submitted")
    row.get_by_role("link", name="Review").click()
    expect(admin.get_by_role("heading", level=1)).to_contain_text("Progress billing #1")
    g702 = admin.locator("#g702")
    expect(g702.locator("#g702-total_completed_and_stored td.claimed")).to_have_text(
        cash(b["claimed"].total_completed_and_stored)
    )
    expect(g702.locator("#g702-current_payment_due td.approved")).to_have_text(
        cash(b["approved"].current_payment_due)
    )
    visit(admin, "admin-review")
    reason = "Line 1: the site walk found 10,000.00 of rough-in done, not 12,500.00."
    admin.get_by_label("Line 1 status").select_option("revise")
    admin.get_by_label("Reason, line 1").fill(reason)
    admin.get_by_label("Line 2 status").select_option("approved")
    admin.get_by_label("Line 3 status").select_option("approved")
    admin.get_by_role("button", name="Revise & resubmit").click()
    expect(admin.locator(".alert-success")).to_contain_text("sent back for revision")
    visit(admin, "admin-review-sent-back")
    assert billing_of(app, ids["first_id"])["status"] == "revise_and_resubmit"

    # --- 6. The contact sees the reason, corrects and resubmits -------------
    contact.reload()
    expect(contact.locator(".alert-danger")).to_contain_text(reason)
    visit(contact, "contact-billing-revise")
    contact.get_by_label("Line 1 work completed this period").fill("10,000.00")
    contact.get_by_role("button", name="Resubmit").click()
    expect(contact.locator(".alert-success")).to_contain_text("resubmitted")
    b = billing_of(app, ids["first_id"])
    assert (b["status"], b["revision"]) == ("under_review", 1)
    assert b["claimed"].total_completed_and_stored == D("14000.00")
    visit(contact, "contact-billing-resubmitted")

    # --- 7. The admin adjusts an approved amount and approves (as noted) ----
    admin.reload()
    expect(admin.locator("#g702-total_completed_and_stored td.claimed")).to_have_text(
        cash(D("14000.00"))
    )
    for n in (1, 2, 3):
        admin.get_by_label(f"Line {n} status").select_option("approved")
    admin.get_by_label("Approved materials, line 2").fill("3,500.00")
    admin.get_by_label("Reason, line 2").fill("Only 3,500.00 of fixtures delivered.")
    visit(admin, "admin-review-adjusted")
    admin.get_by_role("button", name="Approve").click()
    expect(admin.locator(".alert-success")).to_contain_text("approved as noted")
    b = billing_of(app, ids["first_id"])
    assert b["status"] == BillingStatus.APPROVED_AS_NOTED
    assert b["approved"].total_completed_and_stored == D("13500.00")
    assert b["approved"].current_payment_due == D("13500.00") - D("1000.00") - D(
        "175.00"
    )
    expect(admin.locator(".badge.status-approved_as_noted").first).to_have_text(
        "Approved as noted"
    )
    for key in ("total_completed_and_stored", "retainage", "current_payment_due"):
        row = admin.locator(f"#g702-{key}")
        expect(row.locator("td.claimed")).to_have_text(cash(getattr(b["claimed"], key)))
        expect(row.locator("td.approved")).to_have_text(
            cash(getattr(b["approved"], key))
        )
    visit(admin, "admin-review-approved")

    contact.reload()
    expect(contact.locator(".alert-success").first).to_contain_text("Approved as noted")
    expect(contact.locator(".alert-success").first).to_contain_text(
        cash(b["approved"].current_payment_due)
    )
    visit(contact, "contact-billing-approved")

    # --- 8. The second contact declines the invitation ----------------------
    other = new_page()
    other.goto(magic_link(app, ids["ben"]))
    other.get_by_role("button", name="Continue").click()
    expect(
        other.get_by_role("heading", name="You have been invited to bill")
    ).to_be_visible()
    visit(other, "second-contact-home")
    other.get_by_text("Decline this invitation").click()
    other.get_by_label(re.compile(r"^Reason")).fill("No work on site this period.")
    other.get_by_role("button", name="Decline").click()
    expect(other.locator(".alert-info")).to_contain_text("Invitation declined")
    visit(other, "second-contact-declined")
    with app.app_context():
        declined = db.session.scalars(
            sa.select(Invitation).where(Invitation.commitment_id == ids["second_id"])
        ).one()
        assert declined.status == InvitationStatus.DECLINED
        assert declined.decline_reason == "No work on site this period."
        db.session.remove()

    admin.goto(dashboard_url)
    expect(admin.locator(f"#row-{ids['second_id']}")).to_have_attribute(
        "data-state", "declined"
    )
    expect(admin.locator(f"#row-{ids['first_id']}")).to_have_attribute(
        "data-state", "approved_as_noted"
    )
    assert (b["claimed_period"], b["approved_period"]) == (D("14000.00"), D("13500.00"))
    # Decided, it is the approved G702 (line 8) and G703 (E).
    expect(admin.locator("#total-current-payment-due")).to_have_text(
        cash(b["approved"].current_payment_due)
    )
    expect(admin.locator(f"#row-{ids['first_id']} .figures-side")).to_have_text(
        "approved"
    )
    visit(admin, "period-dashboard-decided")

    # --- 9. The admin generates the upstream claim and downloads its PDF ----
    admin.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Owner invoices"
    ).click()
    visit(admin, "claims-index")
    admin.get_by_role("combobox", name="Prime contract").select_option(
        str(ids["contract_id"])
    )
    admin.get_by_role("combobox", name="Billing period").select_option(index=1)
    admin.get_by_role("button", name="Generate claim").click()
    expect(admin.locator(".alert-success")).to_contain_text(
        "Owner invoice #1 generated"
    )
    with app.app_context():
        claim = db.session.scalars(sa.select(ClientClaim)).one()
        claim_totals = upstream.claim_figures(claim, "claimed").totals
        db.session.remove()
    # 26-100: 10,000 × 1.05; 26-500: 3,500 materials × 1.05.
    assert claim_totals.total_completed_and_stored == D("14175.00")
    for key in ("total_completed_and_stored", "retainage", "current_payment_due"):
        expect(admin.locator(f"#g702-{key} td.num").first).to_have_text(
            cash(getattr(claim_totals, key))
        )
    visit(admin, "claim-view")
    with admin.expect_download() as download:
        admin.get_by_role("link", name="Download PDF").click()
    pdf_bytes = open(download.value.path(), "rb").read()
    assert pdf_bytes.startswith(b"%PDF")
    pdf_text = " ".join(
        page.extract_text() for page in PdfReader(io.BytesIO(pdf_bytes)).pages
    )
    assert cash(claim_totals.current_payment_due) in pdf_text
    assert "Owner invoice #1" in pdf_text
    assert download.value.suggested_filename.endswith(".pdf")

    # The record of it all: the global audit log, the billing's own, and the
    # outbox with one of its messages (checked by axe and the Nu checker).
    admin.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Audit log"
    ).click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("Audit log")
    expect(admin.locator(".audit-table")).to_contain_text("Progress billing #1")
    visit(admin, "audit-log")
    first_billing = billing_of(app, ids["first_id"])["id"]
    admin.goto(f"{base}/admin/billings/{first_billing}/audit")
    visit(admin, "billing-audit")
    admin.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Outbox"
    ).click()
    visit(admin, "outbox")
    admin.locator("table a[href^='/admin/outbox/']").first.click()
    expect(
        admin.get_by_role("heading", level=2, name="Text of the mail")
    ).to_be_visible()
    visit(admin, "outbox-message")

    # --- 10. Finance creates an IIF batch and downloads it ------------------
    finance = new_page()
    sign_in(finance, base, ids["finance_email"], FINANCE_PASSWORD)
    finance.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Exports"
    ).click()
    expect(finance.get_by_role("heading", level=1)).to_have_text("Exports")
    # exports.js submits the filter on change: it must have run first (the
    # page's load event), then the filtered page's own response is the signal.
    finance.wait_for_load_state("load")
    with finance.expect_response(
        lambda r: "format=iif" in r.url and r.request.resource_type == "document"
    ):
        finance.get_by_label("Export format").select_option("iif")
    expect(finance).to_have_url(re.compile(r"format=iif"))
    ready = finance.get_by_role("row").filter(has_text="SC-101 #1")
    expect(ready).to_contain_text("Ready")
    expect(ready).to_contain_text(cash(b["approved"].current_payment_due))
    visit(finance, "exports-ready")
    finance.get_by_label("Export SC-101 #1").check()
    finance.get_by_role("button", name="Create batch").click()
    expect(finance.locator(".alert-success")).to_contain_text("created with 1 billing")
    batch_row = finance.get_by_role("row").filter(has_text="SC-101 #1")
    expect(batch_row).to_contain_text(cash(b["approved_period"]))
    expect(batch_row).to_contain_text(cash(b["approved"].current_payment_due))
    visit(finance, "export-batch")
    with finance.expect_download() as download:
        finance.get_by_role("link", name=re.compile(r"^Download ")).click()
    iif = open(download.value.path(), "rb").read()
    assert b"!TRNS" in iif
    ap_amount = f"-{b['approved'].current_payment_due:.2f}".encode()
    assert b"\tAccounts Payable\tAlpha Electric\t\t" + ap_amount + b"\t" in iif
    with app.app_context():
        batch = db.session.scalars(sa.select(ExportBatch)).one()
        assert bytes(batch.content) == iif
        assert batch.total_amount == b["approved"].current_payment_due
        db.session.remove()

    a11y.assert_clean()
    nu.assert_clean()
    # Reported, not asserted: the journey's pace is the machine's, not the app's.
    elapsed = time.monotonic() - started
    print(f"journey took {elapsed:.1f}s over {len(a11y.pages)} pages")
