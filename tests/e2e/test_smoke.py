"""The browser reaches the served app."""

from __future__ import annotations


def test_login_page_renders(page, live_server, shots) -> None:
    page.goto(live_server + "/admin/")
    shots("login")
    assert page.title().endswith("Progress Billings")
    assert page.locator("nav.navbar").count() == 1
