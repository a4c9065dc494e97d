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
        "Billings",
        "Owner invoices",
        "Exports",
    ],
    "viewer": [
        "Dashboard",
        "Projects",
        "Vendors",
        "Periods",
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
        expect(nav.get_by_role("link", name="Dashboard")).to_have_attribute(
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
