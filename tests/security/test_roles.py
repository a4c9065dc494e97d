"""Every route × every role, from the URL map (SPEC §1): who may use what.

A route added later is checked automatically: back-office and finance views
declare their roles (``role_required``) and the declaration must respect the
role table of SPEC §1; the answers must match the declaration; refused
requests write nothing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from portal.extensions import db

from . import crawl, fuzz

ROLES = ["anonymous", "contact", "other_contact", "viewer", "finance", "admin"]
CONTACT_PUBLIC = {"contact.link", "contact.new_link", "contact.logout"}
#: Contact pages about one object (Olive gets a 404 on Casey's).
CONTACT_INDEX = {"contact.index"}
#: What each staff role may change (SPEC §1): viewers nothing but their own
#: account and API tokens; finance also exports and ERP settings.
SELF_SERVICE = {
    "admin.account",
    "admin.logout",
    "exports.token_create",
    "exports.token_revoke",
}
FINANCE_WRITES = {
    "exports.batch_create",
    "exports.batch_reverse",
    "exports.settings_save",
    "exports.settings_cost_codes_save",
    "exports.settings_cost_codes_fill",
    "exports.settings_vendors_save",
    "exports.settings_projects_save",
}


def expected(route: crawl.Route, role: str, app) -> str:
    """'allow', 'login' (sent to sign in), or the refusal's status code."""
    endpoint, area = route.endpoint, route.area
    if endpoint in ("static", "root"):
        return "allow"
    if area == "api":
        return "allow" if endpoint == "exports.api_openapi" else "401"
    if area == "contact":
        if endpoint in CONTACT_PUBLIC:
            return "allow"
        if role == "contact":
            return "allow"
        if role == "other_contact":
            return "allow" if endpoint in CONTACT_INDEX else "404"
        return "401" if role == "anonymous" else "403"
    if endpoint == "admin.login":
        return "allow"
    if role == "anonymous":
        return "login"
    if role in ("contact", "other_contact"):
        return "403"
    view = app.view_functions[endpoint]
    return "allow" if role in view.allowed_roles else "403"


def test_declared_roles_respect_the_role_table(app) -> None:
    """No view lets a viewer change anything, nor finance change the back office."""
    problems = []
    for route in crawl.routes(app):
        if route.area not in ("admin", "exports") or route.endpoint == "admin.login":
            continue
        view = app.view_functions[route.endpoint]
        roles = set(getattr(view, "allowed_roles", ()))
        if not roles:
            problems.append(f"{route.endpoint} declares no roles")
            continue
        if "POST" not in route.methods or route.endpoint in SELF_SERVICE:
            continue
        if "viewer" in roles:
            problems.append(f"{route.endpoint}: viewers may post")
        if "finance" in roles and route.endpoint not in FINANCE_WRITES:
            problems.append(f"{route.endpoint}: finance may post")
    assert problems == []


def _answer_matches(response, want: str, method: str) -> bool:
    code = response.status_code
    if want == "login":
        return (
            code == 302
            and urlsplit(response.headers["Location"]).path == "/admin/login"
        )
    if want == "allow":
        if method == "GET":  # a page, or a redirect that is not "sign in first"
            return code == 200 or (
                code == 302
                and urlsplit(response.headers["Location"]).path != "/admin/login"
            )
        return code not in (401, 403) and code < 500
    return code == int(want)


@pytest.mark.parametrize("role", ROLES)
def test_every_route_for_every_role(app, client, auth, ids, tally, role: str) -> None:
    """GETs first; then refused POSTs (nothing may change); allowed POSTs last."""
    checked, wrong = 0, []
    routes = crawl.routes(app)
    with app.app_context():
        before = fuzz.fingerprint()
        db.session.remove()
    allowed_posts = []
    for phase in ("GET", "POST"):
        for route in routes:
            if phase not in route.methods:
                continue
            want = expected(route, role, app)
            if phase == "POST" and want == "allow":
                allowed_posts.append(route)
                continue
            crawl.sign_in(auth, ids, role)
            url = crawl.url_for_route(app, route, ids)
            response = client.open(url, method=phase)
            checked += 1
            if not _answer_matches(response, want, phase):
                wrong.append(
                    f"{phase} {route.endpoint}: {response.status_code}, want {want}"
                )
        if phase == "POST":
            with app.app_context():
                # A contact posting to /admin/login is a failed sign-in attempt.
                diff = fuzz.changed(before, fuzz.fingerprint(), ("n_audit_events",))
                db.session.remove()
            assert diff == [], f"refused requests wrote: {diff}"
    for route in allowed_posts:
        crawl.sign_in(auth, ids, role)
        response = client.post(crawl.url_for_route(app, route, ids), data={})
        checked += 1
        if not _answer_matches(response, "allow", "POST"):
            wrong.append(f"POST {route.endpoint}: {response.status_code}, want allow")
    tally(checked)
    assert wrong == []
    assert checked > 100
