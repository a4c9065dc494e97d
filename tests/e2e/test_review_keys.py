"""The review from the keyboard (issue 15 items 4 and 5), at 1280 and 375 px, on
a 500-line billing sent back once and resubmitted with two lines changed: keys
move between lines, approve one as claimed, send one back with its reason, the
shortcut sheet opens under ? and closes with Esc, c filters to the changed
lines, d goes to the decision, which saves what the keys set; the bar with the
billing and its G702 figures stays in view while the lines scroll."""

from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from portal.billing import billings
from portal.core.statuses import LineStatus, PeriodStatus
from portal.extensions import db
from portal.models import Billing, BillingPeriod, Project, User

from .. import factories as f
from .a11y import _AXE, BLOCKING, TAGS
from .conftest import ARTIFACTS
from .test_screenshots import seed_demo

pytestmark = pytest.mark.e2e

LINES = 500
SHOTS = ARTIFACTS / "review-keys"


def long_billing(app) -> dict:
    """The demo, plus a ``LINES``-line billing under review in its revision 1:
    line 2's work went 100 → 150 and line 3's new stored 10 → 0."""
    data = seed_demo(app)
    with app.app_context():
        project = db.session.scalars(sa.select(Project)).one()
        admin = db.session.scalars(
            sa.select(User).where(User.email == data["admin_email"])
        ).one()
        period = db.session.scalars(
            sa.select(BillingPeriod).where(
                BillingPeriod.project_id == project.id,
                BillingPeriod.status == PeriodStatus.OPEN,
            )
        ).one()
        contact = f.make_contact(f.make_vendor(name="Long Line Mechanical"))
        commitment = f.make_commitment(
            project,
            contact.vendor,
            [(f"23-{i:03d}", "1000.00") for i in range(LINES)],
            [contact],
        )
        billing = billings.create_billing(commitment, period, admin)
        amounts = {bl.sov_line_id: ("100", "10") for bl in billing.lines}
        billings.save_billing(
            billing, admin, billings.BillingInput(lines=amounts), billing.version
        )
        billings.submit_billing(billing, admin, billing.version)
        first = min(billing.lines, key=lambda bl: bl.sov_line.line_number)
        billings.review_lines(
            billing,
            admin,
            {first.id: billings.LineReview("100", "10", LineStatus.REVISE, "Why?")},
            billing.version,
        )
        billings.send_back(billing, admin, billing.version)
        by_number = {bl.sov_line.line_number: bl.sov_line_id for bl in billing.lines}
        amounts[by_number[2]] = ("150", "10")
        amounts[by_number[3]] = ("100", "0")
        billings.save_billing(
            billing, admin, billings.BillingInput(lines=amounts), billing.version
        )
        billings.submit_billing(billing, admin, billing.version)
        db.session.commit()
        data["long_id"] = billing.id
        data["line_ids"] = {bl.sov_line.line_number: bl.id for bl in billing.lines}
        db.session.remove()
    return data


def _current(page) -> str:
    """The id of the current line (the one the keys act on)."""
    return page.locator("#g703 tbody tr[aria-current=true]").get_attribute("id")


def _in_view(page, selector: str) -> dict:
    return page.evaluate(
        """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
        return {top: r.top, bottom: r.bottom, height: r.height, vh: innerHeight}; }""",
        selector,
    )


@pytest.mark.parametrize("width", [1280, 375])
def test_the_review_from_the_keyboard(app, live_server, new_context, width) -> None:
    data = long_billing(app)
    ids = data["line_ids"]  # line number → billing line id (the fields' names)
    page = new_context().new_page()
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(live_server + "/admin/login")
    page.get_by_label("Email").fill(data["admin_email"])
    page.get_by_label("Password").fill(data["admin_password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".alert-success")).to_contain_text("Welcome back")
    started = time.monotonic()
    page.goto(f"{live_server}/admin/billings/{data['long_id']}")
    print(f"{LINES}-line review loaded in {time.monotonic() - started:.1f} s")
    expect(page.locator("#g703 tbody tr")).to_have_count(LINES)
    save = page.locator('#decision button[value="save"]')
    expect(save).to_have_accessible_name("Save review")

    # Moving: j/k anywhere but in a field; ↓/↑ once on a line.
    page.keyboard.press("j")
    assert _current(page) == "line-1"
    expect(page.locator("#line-1")).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert _current(page) == "line-3"
    page.keyboard.press("k")
    assert _current(page) == "line-2"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    assert _current(page) == "line-2"

    # e: into the approved amount; typing there is typing (no key is taken),
    # and the live recompute still follows it (G702 and the sticky bar).
    due = page.locator("#bar-current_payment_due [data-live-summary]")
    before = due.inner_text()
    page.keyboard.press("e")
    work = page.locator(f"#line-{ids[2]}-work")
    expect(work).to_be_focused()
    page.keyboard.type("1j2k0")  # j and k are typed, not moves
    expect(work).to_have_value("1j2k0")
    assert _current(page) == "line-2"
    work.fill("120")
    expect(page.locator("#line-2")).to_have_class(re.compile("table-warning"))
    expect(due).not_to_have_text(before)
    expect(page.locator("#bar-current_payment_due .bar-difference")).to_have_text(
        "-$27.00"  # 30.00 less work, less its 10 % retainage
    )
    # Esc back to the line, a: approved = claimed, status approved.
    page.keyboard.press("Escape")
    expect(page.locator("#line-2")).to_be_focused()
    page.keyboard.press("a")
    expect(work).to_have_value("150.00")
    expect(page.locator(f"#line-{ids[2]}-status")).to_have_value(LineStatus.APPROVED)
    expect(page.locator("#line-2")).not_to_have_class(re.compile("table-warning"))
    expect(due).to_have_text(before)

    # r on line 3: revise, and the reason field has the focus.
    page.keyboard.press("j")
    page.keyboard.press("r")
    expect(page.locator(f"#line-{ids[3]}-status")).to_have_value(LineStatus.REVISE)
    reason = page.locator(f"#line-{ids[3]}-comment")
    expect(reason).to_be_focused()
    reason.press_sequentially("Show the delivery ticket")
    expect(reason).to_have_value("Show the delivery ticket")
    page.keyboard.press("Escape")
    expect(page.locator("#line-3")).to_be_focused()

    # ? opens the sheet (a modal dialog); Esc closes it, back on the line.
    opener = page.locator("#shortcuts-open")
    expect(opener).to_be_visible()
    expect(opener).to_have_accessible_name("Keyboard shortcuts (?)")
    page.keyboard.press("?")
    sheet = page.locator("dialog#shortcuts")
    expect(sheet).to_be_visible()
    expect(sheet).to_have_role("dialog")
    expect(sheet).to_have_accessible_name("Keyboard shortcuts")
    assert page.evaluate("document.getElementById('shortcuts').matches(':modal')")
    expect(sheet).to_contain_text("Approve the line as claimed")
    if width == 1280:
        # axe on what this page adds (the whole 500-line page takes minutes).
        found = [
            f"{v['impact']} {v['id']}: {v['help']}"
            for v in _AXE.run(
                page,
                context={
                    "include": [["#shortcuts"], ["#review-bar"], ["#changes-since"]]
                },
                options={
                    "runOnly": {"type": "tag", "values": TAGS},
                    "resultTypes": ["violations"],
                },
            ).response["violations"]
            if v.get("impact") in BLOCKING
        ]
        assert not found, found
    page.keyboard.press("a")  # nothing happens behind the dialog
    page.keyboard.press("Escape")
    expect(sheet).to_be_hidden()
    expect(page.locator("#line-3")).to_be_focused()
    opener.click()
    expect(sheet).to_be_visible()
    sheet.locator("button.btn-primary[data-close-sheet]").click()
    expect(sheet).to_be_hidden()

    # c: only the lines the revision changed (2 and 3), at once; c again: all.
    page.locator("#line-3").focus()
    page.keyboard.press("c")
    expect(page.locator("#changed-toggle")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#g703 tbody tr:visible")).to_have_count(2, timeout=30_000)
    assert page.url.endswith("?changed=1")
    expect(page.locator("#line-2 td.line-change")).to_contain_text("$100.00 → $150.00")
    page.keyboard.press("c")
    expect(page.locator("#changed-toggle")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#g703 tbody tr:visible")).to_have_count(LINES, timeout=30_000)
    assert "changed" not in page.url

    # A long billing: the bar stays in view as the lines scroll; the current
    # line is never under it.
    page.locator("#line-400").scroll_into_view_if_needed()
    page.locator("#line-400").click(position={"x": 5, "y": 5})
    page.keyboard.press("j")
    assert _current(page) == "line-401"
    bar = _in_view(page, "#review-bar")
    row = _in_view(page, "#line-401")
    assert page.evaluate("scrollY") > 300
    assert 0 <= bar["top"] < 0.1 * bar["vh"] and bar["bottom"] <= row["top"] + 1
    assert row["bottom"] <= bar["vh"]
    expect(page.locator("#bar-current_payment_due")).to_be_in_viewport()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"scrolled-{width}.png"))
    if width == 1280:
        expect(page.locator("#review-bar")).to_contain_text(
            "Long Line Mechanical", use_inner_text=True
        )
        # The decision buttons too, and the bar's G702 figures.
        expect(save).to_be_in_viewport()
        expect(page.locator("#bar-retainage")).to_be_in_viewport()
        decision = _in_view(page, "#decision")
        assert row["bottom"] <= decision["top"] + 1
        assert bar["height"] + decision["height"] < 0.45 * bar["vh"]
    else:
        # On a phone only the compact bar sticks.
        assert bar["height"] < 0.15 * bar["vh"]
        assert (
            page.evaluate(
                "getComputedStyle(document.getElementById('decision')).position"
            )
            != "sticky"
        )

    # d: to the decision; its comment, then its buttons. The save keeps what
    # the keys set.
    page.keyboard.press("d")
    expect(page.locator("#comment")).to_be_focused()
    page.keyboard.press("Tab")
    expect(save).to_be_focused()
    page.keyboard.press("Enter")
    # (Saving and showing 500 lines again takes a while on a busy machine.)
    expect(page.locator(".alert-success")).to_contain_text(
        "Review saved.", timeout=90_000
    )
    with app.app_context():
        billing = db.session.get(Billing, data["long_id"])
        lines = {bl.id: bl for bl in billing.lines}
        two = lines[data["line_ids"][2]]
        three = lines[data["line_ids"][3]]
        assert (two.status, two.approved_work) == (
            LineStatus.APPROVED,
            two.claimed_work,
        )
        assert three.status == LineStatus.REVISE
        assert three.reviewer_comment == "Show the delivery ticket"
        assert billing.status == "under_review"
        db.session.remove()
