"""The README's screenshots, taken in the browser from the demo data.

The demo (``portal.demo.load_demo``) is loaded into the run's database; one
contact's billing of the open period is submitted and another's is left as a
draft with amounts, so the three pictures show real work in progress: the
contact's billing form, the admin's review page and the period dashboard.

Each picture is saved under test-artifacts/e2e/screenshots/ on every run, and
into docs/screenshots/ (what the README shows) when it is missing there or when
``UPDATE_SCREENSHOTS=1`` is set. axe-core checks each page too.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from portal.accounts import tokens
from portal.billing import billings
from portal.core.statuses import PeriodStatus
from portal.demo import load_demo
from portal.extensions import db
from portal.models import BillingPeriod, Commitment, Contact, Project
from portal.timeutil import utcnow

from .a11y import A11y
from .conftest import ARTIFACTS
from .outbox import magic_link

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
OUT = ARTIFACTS / "screenshots"
UPDATE = os.environ.get("UPDATE_SCREENSHOTS", "") in {"1", "true", "yes"}


def _bill(
    contact: Contact,
    number: str,
    amounts: dict[int, tuple[str, str]],
    installed: dict[int, str] | None = None,
):
    """A billing of the open period for commitment ``number``: ``amounts`` are
    (work, new materials stored) by line number, ``installed`` the stored
    materials installed this period."""
    commitment = db.session.scalars(
        sa.select(Commitment).where(Commitment.number == number)
    ).one()
    period = db.session.scalars(
        sa.select(BillingPeriod).where(
            BillingPeriod.project_id == commitment.project_id,
            BillingPeriod.status == PeriodStatus.OPEN,
        )
    ).one()
    billing = billings.create_billing(commitment, period, contact)
    lines = {
        line.id: amounts.get(line.line_number, ("", ""))
        for line in commitment.sov_lines
    }
    billings.save_billing(
        billing,
        contact,
        billings.BillingInput(
            lines=lines,
            vendor_invoice_number=f"{commitment.vendor.erp_vendor_code}-1002",
            notes="Progress per the site walk of the 25th.",
            installed={
                line.id: (installed or {})[line.line_number]
                for line in commitment.sov_lines
                if line.line_number in (installed or {})
            },
        ),
        billing.version,
    )
    return billing


def seed_demo(app) -> dict:
    """The demo, plus a submitted billing (Acme) and a draft (Bright Electric)."""
    with app.app_context():
        demo = load_demo()
        dana = db.session.scalars(
            sa.select(Contact).where(Contact.email == "dana@acme-concrete.example")
        ).one()
        sam = db.session.scalars(
            sa.select(Contact).where(Contact.email == "sam@bright-electric.example")
        ).one()
        submitted = _bill(
            dana,
            "SC-001",
            {3: ("30000.00", ""), 4: ("48000.00", "9500.00"), 5: ("12000.00", "")},
        )
        billings.submit_billing(submitted, dana, submitted.version)
        _bill(
            sam,
            "SC-002",
            {
                2: ("6500.00", ""),
                3: ("27000.00", "11000.00"),
                4: ("9500.00", ""),
                5: ("12400.00", ""),
                8: ("", "18500.00"),
            },
            # Line 3's switchgear, stored last month, partly installed now.
            installed={3: "6000.00"},
        )
        # Sam's link from last month's invitation, already used: the page
        # offers a fresh one, which the served app signs and queues (so the
        # link the browser opens never depends on this process's clock).
        used, token = tokens.issue_link(sam)
        used.used_at = utcnow()
        db.session.commit()
        project = db.session.scalars(sa.select(Project)).one()
        out = {
            "admin_email": demo["admin_email"],
            "admin_password": demo["admin_password"],
            "sam_old_link": tokens.link_url(token),
            "sam_email": sam.email,
            "billing_id": submitted.id,
            "period_id": submitted.period_id,
            "project": project.name,
        }
        db.session.remove()
    return out


def png_width(path: Path) -> int:
    """The width of a PNG, from its IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">I", head[16:20])[0]


def save(page: Page, name: str) -> Path:
    """Screenshot the whole page; publish it to docs/ when asked (or missing)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    page.evaluate(
        "window.scrollTo(0, 0);"
        "document.querySelectorAll('.table-responsive').forEach(e => e.scrollLeft = 0)"
    )
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    assert png_width(path) == 1280
    target = DOCS / f"{name}.png"
    if UPDATE or not target.exists():
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return path


def test_readme_screenshots(app, live_server, new_context) -> None:
    base = live_server
    data = seed_demo(app)
    a11y = A11y()

    # The contact's billing form: a draft with this period's amounts.
    contact = new_context().new_page()
    contact.goto(data["sam_old_link"])
    # "Already used"; or "expired" where the server's clock is behind this
    # process's by more than tokens.CLOCK_SKEW (on CI it was behind).
    expect(contact.get_by_role("heading", level=1)).to_have_text(
        re.compile("This link was already used|This link has expired")
    )
    contact.get_by_role("button", name="Email me a fresh link").click()
    expect(contact.get_by_role("heading", level=1)).to_contain_text("Check your email")
    contact.goto(magic_link(app, data["sam_email"]))
    continue_button = contact.get_by_role("button", name="Continue")
    try:
        expect(continue_button).to_be_visible()
    except AssertionError as exc:
        raise AssertionError(
            f"no Continue button at {contact.url}:\n{contact.inner_text('body')}"
        ) from exc
    continue_button.click()
    contact.get_by_role("link", name="Continue billing #2").click()
    expect(contact.get_by_role("heading", level=1)).to_contain_text(
        "Progress billing #2"
    )
    expect(contact.get_by_label("Line 3 work completed this period")).to_have_value(
        "27,000.00"
    )
    a11y.check(contact, "contact billing form")
    save(contact, "contact-billing-form")

    # The admin's review of a submitted billing.
    admin = new_context().new_page()
    admin.goto(f"{base}/admin/login")
    admin.get_by_label("Email").fill(data["admin_email"])
    admin.get_by_label("Password").fill(data["admin_password"])
    admin.get_by_role("button", name="Sign in").click()
    # The signed-in page, not a race with the sign-in's own response.
    expect(admin.locator(".alert-success")).to_contain_text("Welcome back")
    admin.goto(f"{base}/admin/billings/{data['billing_id']}")
    expect(admin.locator("#billing-status")).to_contain_text("Under review")
    admin.get_by_label("Approved work, line 4").fill("45,000.00")
    admin.get_by_label("Reason, line 4").fill("Level 2 slab pour is 90% done, not 96%.")
    admin.get_by_label("Line 4 status").select_option("approved")
    admin.get_by_label("Line 3 status").select_option("approved")
    admin.evaluate("document.activeElement.blur()")  # no focus ring
    assert admin.evaluate(
        "(() => { const t = document.querySelector('#g703');"
        " return t.getBoundingClientRect().width <= t.parentElement.clientWidth; })()"
    ), "the review's G703 should fit a 1280px window"
    a11y.check(admin, "admin review")
    save(admin, "admin-review")

    # The period dashboard: every commitment's state for the open period.
    admin.goto(f"{base}/admin/periods/{data['period_id']}")
    expect(admin.get_by_role("heading", level=1)).to_contain_text(data["project"])
    expect(admin.locator("tbody tr")).to_have_count(3)
    a11y.check(admin, "period dashboard")
    save(admin, "period-dashboard")

    a11y.assert_clean()
    for name in ("contact-billing-form", "admin-review", "period-dashboard"):
        assert png_width(DOCS / f"{name}.png") == 1280
