"""The finish a user notices (issue 8): navigation per role, friendly error
pages, the favicon, confirmation and progress feedback, all in the browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from portal.extensions import db

from .. import factories as f
from .a11y import A11y

pytestmark = pytest.mark.e2e

PASSWORD = "polish pass 2024"
#: What the main navigation shows to each role (US terms).
NAV = {
    "admin": [
        "Dashboard",
        "Projects",
        "Vendors",
        "Periods",
        "Review queue",
        "Billings",
        "Owner invoices",
        "Exports",
        "Audit log",
        "Outbox",
        "Users",
    ],
    "finance": [
        "Dashboard",
        "Projects",
        "Vendors",
        "Periods",
        "Review queue",
        "Billings",
        "Owner invoices",
        "Exports",
    ],
    "viewer": [
        "Dashboard",
        "Projects",
        "Vendors",
        "Periods",
        "Review queue",
        "Billings",
        "Owner invoices",
        "Exports",
        "Audit log",
    ],
}


def test_navigation_errors_and_favicon(app, live_server, new_context) -> None:
    base = live_server
    with app.app_context():
        emails = {
            role: f.make_user(role, f"{role}@polish.example", PASSWORD).email
            for role in NAV
        }
        db.session.commit()
        db.session.remove()
    a11y = A11y()

    anonymous = new_context().new_page()
    response = anonymous.goto(base + "/no-such-page")
    assert response.status == 404
    expect(anonymous.get_by_role("heading", level=1)).to_have_text(
        "We couldn't find that page"
    )
    expect(anonymous.get_by_role("link", name="Go to the home page")).to_be_visible()
    a11y.check(anonymous, "404")
    icon = anonymous.request.get(base + "/static/favicon.svg")
    assert icon.ok and "svg" in icon.headers["content-type"]
    assert (
        anonymous.locator('link[rel="icon"]')
        .get_attribute("href")
        .split("?")[0]
        .endswith("favicon.svg")
    )

    for role, links in NAV.items():
        page = new_context().new_page()
        page.goto(base + "/admin/login")
        page.get_by_label("Email").fill(emails[role])
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        nav = page.get_by_role("navigation", name="Main navigation")
        expect(nav.locator(".navbar-nav .nav-link")).to_have_text(links)
        # Each role lands on what it does: finance on the exports.
        home = "Exports" if role == "finance" else "Dashboard"
        expect(nav.get_by_role("link", name=home)).to_have_attribute(
            "aria-current", "page"
        )
        if role != "admin":
            response = page.goto(base + "/admin/users")
            assert response.status == 403
            expect(page.get_by_role("heading", level=1)).to_have_text(
                "You don't have access to this page"
            )
            expect(page.get_by_role("main")).to_contain_text(f"({role})")
            expect(page.get_by_role("link", name="Go to the dashboard")).to_be_visible()
            a11y.check(page, f"403 for {role}")
        else:
            page.get_by_role("link", name="Users").click()
            expect(page.get_by_role("navigation", name="breadcrumb")).to_be_visible()
            a11y.check(page, "users")
        page.context.close()
    a11y.assert_clean()


@pytest.mark.calendar
def test_new_period_dates_follow_the_project_and_the_end(
    app, live_server, new_context, today
) -> None:
    """Issue 14 item 11: picking a project puts its next free month in the
    dates; moving the end date moves the due date, until the user types one."""
    from datetime import timedelta

    from portal.billing.periods import series_dates

    with app.app_context():
        admin = f.make_user("admin", "admin@periods.example", PASSWORD)
        first = f.make_project(number="1001", name="First")
        f.make_project(number="1002", name="Second")
        this_month = today.replace(day=1)
        month = series_dates("monthly", this_month, 1)[0]
        f.make_period(
            first, start=month.start_date, end=month.end_date, due=month.end_date
        )
        db.session.commit()
        email, first_label = admin.email, f"{first.number} · {first.name}"
        db.session.remove()
    following = series_dates(
        "monthly", month.end_date + timedelta(days=1), 1, due_days_before_end=5
    )[0]
    page = new_context().new_page()
    page.goto(live_server + "/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".alert-success")).to_contain_text("Welcome back")
    page.goto(live_server + "/admin/periods/new")
    page.get_by_role("combobox", name="Project").select_option(label=first_label)
    expect(page.locator("#f-start_date")).to_have_value(
        following.start_date.isoformat()
    )
    expect(page.locator("#f-end_date")).to_have_value(following.end_date.isoformat())
    expect(page.locator("#f-due_date")).to_have_value(following.due_date.isoformat())
    new_end = following.end_date - timedelta(days=10)
    page.locator("#f-end_date").fill(new_end.isoformat())
    page.locator("#f-end_date").dispatch_event("change")
    expect(page.locator("#f-due_date")).to_have_value(
        (new_end - timedelta(days=5)).isoformat()
    )
    page.get_by_role("button", name="Save period").click()
    expect(page.locator(".alert-success")).to_contain_text("Period #2 created")


def test_a_new_api_token_copies_with_one_click(app, live_server, new_context) -> None:
    """Issue 14 item 15: the token is shown once; "Copy" puts it on the clipboard."""
    with app.app_context():
        user = f.make_user("finance", "fin@tokens.example", PASSWORD)
        db.session.commit()
        email = user.email
        db.session.remove()
    context = new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(live_server + "/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".alert-success")).to_contain_text("Welcome back")
    page.goto(live_server + "/exports/tokens")
    page.get_by_label("Token name").fill("Sage import script")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").input_value()
    assert token.startswith("pbt_")
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == token


def test_a_review_page_prints_its_content_only(app, live_server, new_context) -> None:
    """Issue 14 item 15 (print stylesheet): printed, the review shows the
    billing and its figures, whole, without the navigation or buttons."""
    import io

    from pypdf import PdfReader

    from .test_screenshots import seed_demo

    data = seed_demo(app)
    page = new_context().new_page()
    page.goto(live_server + "/admin/login")
    page.get_by_label("Email").fill(data["admin_email"])
    page.get_by_label("Password").fill(data["admin_password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".alert-success")).to_contain_text("Welcome back")
    page.goto(f"{live_server}/admin/billings/{data['billing_id']}")
    due = page.locator("#g702-current_payment_due td.num").first.inner_text()
    page.emulate_media(media="print")
    expect(page.locator("nav.navbar")).to_be_hidden()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    assert page.locator(".btn:visible").count() == 0
    assert page.evaluate(
        "[...document.querySelectorAll('.table-responsive')]"
        ".every(e => getComputedStyle(e).overflowX === 'visible')"
    )
    text = " ".join(
        p.extract_text()
        for p in PdfReader(
            io.BytesIO(
                page.pdf(format="Letter", landscape=True, print_background=False)
            )
        ).pages
    )
    assert "Progress billing #" in text and due in text
    assert "Sign out" not in text and "Progress Billings" not in text
