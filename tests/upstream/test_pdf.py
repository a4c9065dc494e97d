"""SPEC §9 PDFs: the AIA-style summary and continuation sheet of a downstream
billing and of an upstream claim, checked through their extracted text."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader

from portal import upstream
from portal.billing import figures
from portal.documents import pdf
from portal.extensions import db
from portal.models import (
    Attachment,
    Billing,
    BillingPeriod,
    ClientClaim,
    ClientContract,
    User,
)
from portal.web.templating import money

from .. import factories as f
from ..helpers import bill
from .scenario import build

D = Decimal
G702_KEYS = (
    "original_contract_sum",
    "net_change_by_change_orders",
    "contract_sum_to_date",
    "total_completed_and_stored",
    "retainage",
    "total_earned_less_retainage",
    "previous_certificates",
    "current_payment_due",
    "balance_to_finish_including_retainage",
)


def pages(data: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(data))
    return [page.extract_text() for page in reader.pages]


def attach(billing: Billing, name: str) -> None:
    db.session.add(
        Attachment(
            billing_id=billing.id,
            original_name=name,
            stored_name=f"{billing.id}-{len(name)}-stored",
            content_type="application/pdf",
            size=2048,
            sha256="0" * 64,
            kind="lien_waiver",
        )
    )
    db.session.flush()


def test_billing_pdf_shows_claimed_and_approved_with_reasons(ctx):
    w = build()
    billing = db.session.get(Billing, w.billings["electric"])
    attach(billing, "conditional-waiver-jan.pdf")
    data = pdf.billing_pdf(billing)
    assert data.startswith(b"%PDF-")
    text = "\n".join(pages(data))
    approved = figures.sheet(billing, "approved").totals
    claimed = figures.sheet(billing, "claimed").totals
    for key in G702_KEYS:
        assert money(getattr(approved, key), "USD") in text, key
        assert money(getattr(claimed, key), "USD") in text, key
    # Approved as noted: 15,000.00 claimed, 12,345.65 approved, with the reason.
    assert "$42,497.22" in text  # approved current payment due
    assert "$44,886.14" in text  # as claimed
    assert "$15,000.00" in text and "$12,345.65" in text
    assert "Approved as noted: work on site measured" in text
    # Parties, application, period, billing date, attachments.
    for expected in (
        "Bright Electric",
        "Harbour Tower",
        "SC-002",
        "Application no. 1",
        "2025-01-01 to 2025-01-28",
        "Billing date 2025-01-28",
        "conditional-waiver-jan.pdf",
    ):
        assert expected in text, expected
    assert re.search(r"Page 1 of \d", text)


def test_claim_pdf_matches_the_claim_page(app, client, auth):
    with app.app_context():
        w = build()
        contract = db.session.get(ClientContract, w.contract_id)
        period = db.session.get(BillingPeriod, w.period1_id)
        admin = db.session.get(User, w.admin_id)
        attach(db.session.get(Billing, w.billings["concrete"]), "acme-invoice-0001.pdf")
        claim = upstream.generate_claim(contract, period, admin)
        db.session.commit()
        claim_id = claim.id
    auth.login_user(w.admin_id)
    page = client.get(f"/admin/claims/{claim_id}").get_data(as_text=True)
    shown = {}
    for key in G702_KEYS:
        row = re.search(rf'id="g702-{key}">(.*?)</tr>', page, re.S)
        assert row, key
        shown[key] = re.search(
            r'<td class="num claimed"[^>]*>([^<]+)</td>', row.group(1)
        ).group(1)
    response = client.get(f"/admin/claims/{claim_id}/pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    text = "\n".join(pages(response.data))
    for key, value in shown.items():
        assert value in text, (key, value)
    assert shown["current_payment_due"] == "$79,294.73"
    assert shown["total_completed_and_stored"] == "$87,585.82"
    for expected in (
        "Client Co",
        "Application no. 1",
        "Billing date 2025-01-28",
        "DRAFT",
        "acme-invoice-0001.pdf",
        "$47,680.27",  # L2 this period (G703)
    ):
        assert expected in text, expected


def test_approved_claim_pdf_shows_both_amounts(ctx):
    w = build()
    contract = db.session.get(ClientContract, w.contract_id)
    admin = db.session.get(User, w.admin_id)
    claim = upstream.generate_claim(
        contract, db.session.get(BillingPeriod, w.period1_id), admin
    )
    upstream.submit_claim(claim, admin, claim.version, accept_unmapped=True)
    line = next(ln for ln in claim.lines if ln.client_sov_line.cost_code == "26-100")
    upstream.approve_claim(claim, admin, claim.version, {line.id: ("45000", "2750")})
    db.session.commit()
    text = "\n".join(pages(pdf.claim_pdf(db.session.get(ClientClaim, claim.id))))
    claimed = upstream.claim_sheet(claim, "claimed").totals
    approved = upstream.claim_sheet(claim, "approved").totals
    assert claimed.current_payment_due != approved.current_payment_due
    assert money(claimed.current_payment_due, "USD") in text
    assert money(approved.current_payment_due, "USD") in text
    assert "Approved by client" in text
    assert "$47,680.27" in text and "$45,000.00" in text


@pytest.fixture
def big(ctx):
    """A commitment and a client contract of 80 lines, billed and claimed."""
    admin = f.make_user("admin")
    project = f.make_project(name="Long Schedule", currency="CAD")
    codes = [(f"10-{n:03d}", "1000.00") for n in range(1, 81)]
    contract = f.make_client_contract(project, codes, markup="0")
    commitment = f.make_commitment(project, lines=codes, number="SC-080")
    period = f.make_period(project, 1, start=date(2026, 1, 1), due=date(2026, 2, 5))
    billing = bill(
        commitment, period, admin, dict.fromkeys(range(1, 81), ("100.00", "0"))
    )
    claim = upstream.generate_claim(contract, period, admin)
    db.session.commit()
    return billing, claim


def _continuation_pages(texts: list[str]) -> list[str]:
    return [t for t in texts if "Description of work" in t]


@pytest.mark.parametrize("which", ["billing", "claim"])
def test_long_continuation_sheet_repeats_headers_and_numbers_pages(big, which):
    billing, claim = big
    data = pdf.billing_pdf(billing) if which == "billing" else pdf.claim_pdf(claim)
    texts = pages(data)
    total = len(texts)
    assert total >= 3
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {total}" in text
    sheet = _continuation_pages(texts)
    assert len(sheet) >= 2  # 80 rows do not fit one page
    for text in sheet:
        for header in ("Scheduled", "From previous", "Balance to finish", "Retainage"):
            assert header in text
    joined = "\n".join(texts)
    # Every row is there once; the grand total ends the sheet (CAD formatting).
    for n in (1, 40, 80):
        assert f"10-{n:03d}" in joined
    assert "Grand total $80,000.00" in joined
    assert money(D("8000.00"), "CAD") in joined


def test_text_is_latin1_safe(ctx):
    w = build()
    billing = db.session.get(Billing, w.billings["electric"])
    billing.commitment.vendor.name = "Élan Électrique – “Ωmega” ✓"
    billing.lines[0].reviewer_comment = "Measured on site — 80 % ≤ claimed…"
    db.session.flush()
    text = "\n".join(pages(pdf.billing_pdf(billing)))
    assert 'Élan Électrique - "?mega" ?' in text
    assert "Measured on site - 80 % <= claimed..." in text


def _carry_lines(text: str) -> list[str]:
    """The stored-materials carry printed under F, one "before ..." per line."""
    return re.findall(r"before (\S+)\s*\+ new (\S+)\s*- installed (\S+)", text, re.S)


def test_continuation_sheet_shows_the_stored_materials_carry(ctx, today):
    """SPEC §4: pages show F previous, new, installed and F; the PDF stacks them
    small under F on lines that stored anything, as the review page does."""
    admin = f.make_user("admin")
    project = f.make_project(name="Carry Court", currency="USD")
    codes = [("26-100", "50000.00"), ("26-200", "30000.00"), ("26-300", "20000.00")]
    commitment = f.make_commitment(project, lines=codes, number="SC-CARRY")
    start = today - timedelta(days=70)
    p1 = f.make_period(
        project, 1, start=start, due=start + timedelta(days=30), status="closed"
    )
    bill(commitment, p1, admin, {1: ("20000", "0"), 2: ("0", "10000")})
    start = start + timedelta(days=28)
    p2 = f.make_period(project, 2, start=start, due=start + timedelta(days=30))
    # L2 installs 4,000.00 of its 10,000.00 stored; L3 stores 2,500.00 new, the
    # reviewer keeps 2,000.00 of it.
    billing = bill(
        commitment,
        p2,
        admin,
        {1: ("5000", "0"), 2: ("4000", "0", "4000"), 3: ("0", "2500")},
        approved={3: ("0", "2000")},
    )
    db.session.commit()
    sheets = _continuation_pages(pages(pdf.billing_pdf(billing)))
    approved, claimed = sheets  # approved as noted: both sheets
    assert "Continuation sheet (approved)" in approved
    assert _carry_lines(approved) == [
        ("$10,000.00", "$0.00", "$4,000.00"),  # L2: F 6,000.00
        ("$0.00", "$2,000.00", "$0.00"),  # L3: F 2,000.00
    ]
    assert _carry_lines(claimed) == [
        ("$10,000.00", "$0.00", "$4,000.00"),
        ("$0.00", "$2,500.00", "$0.00"),
    ]
    for text in (approved, claimed):
        assert "$6,000.00" in text
    # L1 never stored anything: no carry under its F (two carries, not three).
    assert approved.count("before ") == 2


MAX = "999999999999.99"  # SPEC §5's largest amount


@pytest.fixture
def maxed(ctx):
    """A billing and a claim whose every G703 column holds SPEC §5's largest
    amount (100 % retainage makes column I as large as G)."""
    admin = f.make_user("admin")
    project = f.make_project(name="Max Tower", currency="USD")
    codes = [("10-001", MAX), ("10-002", MAX), ("10-003", MAX)]
    contract = f.make_client_contract(
        project, codes, markup="0", work_pct="100", materials_pct="100"
    )
    commitment = f.make_commitment(
        project, lines=codes, number="SC-MAX", work_pct="100", materials_pct="100"
    )
    p1 = f.make_period(
        project, 1, start=date(2026, 1, 1), due=date(2026, 2, 5), status="closed"
    )
    bill(commitment, p1, admin, {1: ("499999999999.99", "0"), 2: (MAX, "0")})
    first = upstream.generate_claim(contract, p1, admin)
    upstream.submit_claim(first, admin, first.version)
    p2 = f.make_period(project, 2, start=date(2026, 2, 1), due=date(2026, 3, 5))
    billing = bill(commitment, p2, admin, {1: ("500000000000.00", "0"), 3: ("0", MAX)})
    claim = upstream.generate_claim(contract, p2, admin)
    db.session.commit()
    return billing, claim


@pytest.mark.parametrize("which", ["billing", "claim"])
def test_largest_amounts_are_printed_whole_in_every_column(maxed, which):
    billing, claim = maxed
    if which == "billing":
        data = pdf.billing_pdf(billing)
        sheet = figures.sheet(billing, "approved")
    else:
        data = pdf.claim_pdf(claim)
        sheet = upstream.claim_sheet(claim, "claimed")
    text = "\n".join(_continuation_pages(pages(data)))
    assert "..." not in text
    shown = 0
    for row in sheet.rows:
        fig = row.figures
        for value in (
            fig.scheduled_value,
            fig.previous_work,
            fig.work_this_period,
            fig.materials_stored,
            fig.total_completed_and_stored,
            fig.balance_to_finish,
            fig.retainage,
        ):
            assert money(value, "USD") in text, value
            shown += value >= D("1000000000.00")
    # Large in C (3), D (2), E, F, G (3) and I (3).
    assert shown == 13
    total = money(D(MAX) * 3, "USD")  # the grand total of three maxed lines
    assert total in text
    assert f"Grand total {total}" in text
    # L3 stores the largest amount new: its carry under F is printed whole. An
    # upstream claim's F is a sum over commitments, not a carry: none shown.
    carry = [("$0.00", money(D(MAX), "USD"), "$0.00")] if which == "billing" else []
    assert _carry_lines(text) == carry
