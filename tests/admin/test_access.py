"""Every admin.* endpoint is guarded by role, failing closed (SPEC §1).

The test walks the app's URL map, so a view added later without a guard fails
here: anonymous visitors are sent to the sign-in page, contacts get 403, and
each staff role gets exactly the answer the role table below gives.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import make_everything

#: Pages every back-office role may read.
READ_ALL = {
    "admin.index",
    "admin.projects",
    "admin.project_view",
    "admin.vendors",
    "admin.vendor_view",
    "admin.commitment_view",
    "admin.change_order_view",
    "admin.client_contract_view",
    "admin.periods",
    "admin.period_dashboard",
    "admin.period_close_out",
    "admin.billings",
    "admin.review_queue",
    "admin.billing_review",
    "admin.billing_audit",
    "admin.attachment_download",
}
#: Owner invoices (upstream claims) and the PDFs: read by every role; every
#: other claims view (generate, map, adjust, submit, approve, void...) is admin's.
READ_ALL |= {
    "admin.claims_index",
    "admin.claims_period",
    "admin.claim_view",
    "admin.claim_line",
    "admin.claim_trace",
    "admin.claim_pdf",
    "admin.billing_pdf",
}
#: GET pages that send a permitted user on when the object is not in the state
#: they serve (the claim of make_everything is a draft; approving needs it
#: submitted): the redirect's target.
REDIRECTS = {"admin.claim_approve": "/admin/claims/{claim_id}"}
#: Each staff user's own account (any role).
SELF = {"admin.account", "admin.logout"}
#: The global audit log (admins and viewers, as the navigation shows it).
AUDITORS = {"admin.audit_log"}
PUBLIC = {"admin.login"}


def expected_roles(endpoint: str) -> set[str]:
    """Who may use ``endpoint``, from this file's table alone (never from the
    view's own decorator, which is what the walk checks)."""
    if endpoint in READ_ALL or endpoint in SELF:
        return {"admin", "finance", "viewer"}
    if endpoint in AUDITORS:
        return {"admin", "viewer"}
    return {"admin"}


def _params(ids, endpoint: str) -> dict[str, int]:
    base = {
        "project_id": ids.project_id,
        "vendor_id": ids.vendor_id,
        "contact_id": ids.contact_id,
        "commitment_id": ids.commitment_id,
        "period_id": ids.period1_id,
        "billing_id": ids.billing_id,
        "contract_id": ids.contract_id,
        "change_order_id": ids.change_order_id,
        "item_id": ids.item_id,
        "attachment_id": ids.attachment_id,
        "user_id": ids.admin_id,
        "message_id": ids.message_id,
        "line_id": ids.line_ids[0],
        "claim_id": ids.claim_id,
    }
    if endpoint.startswith("admin.client_line"):
        base["line_id"] = ids.client_line_id
    if endpoint.startswith("admin.claim_line"):
        base["line_id"] = ids.claim_line_id
    return base


def _endpoints(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) for every admin.* rule."""
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin."):
            continue
        methods = rule.methods - {"HEAD", "OPTIONS"}
        method = "GET" if "GET" in methods else "POST"
        out.append((rule.endpoint, method, rule))
    return sorted(out, key=lambda e: e[0])


def _url(app, endpoint: str, rule, ids) -> str:
    params = _params(ids, endpoint)
    with app.test_request_context():
        from flask import url_for

        return url_for(endpoint, **{a: params[a] for a in rule.arguments})


def test_every_admin_view_declares_its_roles(app) -> None:
    """A forgotten @role_required is caught here, not in production."""
    missing = [
        endpoint
        for endpoint, _, _ in _endpoints(app)
        if endpoint not in PUBLIC
        and not hasattr(app.view_functions[endpoint], "allowed_roles")
    ]
    assert missing == []
    assert len(_endpoints(app)) > 60


def test_role_matrix_over_the_url_map(app, client, auth, users) -> None:
    """anonymous → sign-in; contact → 403; each role → its answer, per endpoint."""
    ids = make_everything(app)
    checked = 0
    # Anonymous: redirected to the sign-in page with a local ?next=.
    for endpoint, method, rule in _endpoints(app):
        if endpoint in PUBLIC:
            continue
        url = _url(app, endpoint, rule, ids)
        response = client.open(url, method=method)
        assert response.status_code == 302, (endpoint, response.status_code)
        location = urlsplit(response.headers["Location"])
        assert location.path == "/admin/login", endpoint
        if method == "GET":
            assert parse_qs(location.query)["next"][0].startswith("/admin"), endpoint
        checked += 1
    # A contact session: 403 everywhere in the back office.
    auth.login_contact(ids.contact_id)
    for endpoint, method, rule in _endpoints(app):
        if endpoint in PUBLIC:
            continue
        response = client.open(_url(app, endpoint, rule, ids), method=method)
        assert response.status_code == 403, (endpoint, response.status_code)
    # Staff roles: allowed reads answer 200; refused ones 403 (writes refused too).
    for role in ("viewer", "finance", "admin"):
        for endpoint, method, rule in _endpoints(app):
            if endpoint in PUBLIC or (method == "POST" and role == "admin"):
                continue
            auth.login_user(users[role])
            allowed = role in expected_roles(endpoint)
            response = client.open(_url(app, endpoint, rule, ids), method=method)
            if not allowed:
                assert response.status_code == 403, (
                    role,
                    endpoint,
                    response.status_code,
                )
            elif method == "GET" and endpoint in REDIRECTS:
                assert response.status_code == 302, (role, endpoint)
                target = REDIRECTS[endpoint].format(claim_id=ids.claim_id)
                assert urlsplit(response.headers["Location"]).path == target
            elif method == "GET":
                assert response.status_code == 200, (
                    role,
                    endpoint,
                    response.status_code,
                )
            else:  # a POST the role may make (logout, own password): not refused
                assert response.status_code not in (403, 500), (role, endpoint)
            checked += 1
    # Admin writes: never refused and never a 500 (empty forms get clear errors).
    for endpoint, method, rule in _endpoints(app):
        if method != "POST":
            continue
        auth.login_user(users["admin"])
        response = client.post(_url(app, endpoint, rule, ids), data={})
        assert response.status_code in (200, 302, 400), (
            endpoint,
            response.status_code,
        )
        checked += 1
    assert checked > 200


@pytest.mark.parametrize("role", ["viewer", "finance"])
def test_read_only_roles_see_no_write_buttons(app, client, auth, users, role) -> None:
    ids = make_everything(app)
    auth.login_user(users[role])
    page = client.get(f"/admin/billings/{ids.billing_id}").get_data(as_text=True)
    assert "Edit on the contact&#39;s behalf" not in page
    assert 'name="decision"' not in page
    page = client.get(f"/admin/projects/{ids.project_id}").get_data(as_text=True)
    assert "New commitment" not in page


def test_huge_and_unknown_ids_are_404_not_500(app, client, auth, users) -> None:
    auth.login_user(users["admin"])
    for url in (
        "/admin/projects/99999999999999999999999999",
        "/admin/billings/9223372036854775808",
        "/admin/periods/12345",
        "/admin/commitments/0",
    ):
        assert client.get(url).status_code == 404, url
    response = client.post(
        "/admin/billings/new",
        data={"commitment_id": "99999999999999999", "period_id": "1"},
    )
    assert response.status_code == 302
