"""Finance pages: role guard on every route, batches, ERP settings, API tokens."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from portal.accounts.api_tokens import hash_token
from portal.billing import billings
from portal.extensions import db
from portal.models import (
    ApiToken,
    AuditEvent,
    Billing,
    BillingPeriod,
    Commitment,
    ErpCostCode,
    ErpSettings,
    ExportBatch,
    Project,
    User,
    Vendor,
)
from tests import factories as f
from tests.helpers import counting


def _login(auth, data, role: str) -> None:
    if role == "contact":
        auth.login_contact(data.contact_id)
    elif role != "anonymous":
        auth.login_user(getattr(data, f"{role}_id"))


# ---------------------------------------------------------------- the guard

WRITE_ENDPOINTS = {
    "exports.batch_create",
    "exports.batch_reverse",
    "exports.settings_save",
    "exports.settings_cost_codes_save",
    "exports.settings_cost_codes_fill",
    "exports.settings_vendors_save",
    "exports.settings_projects_save",
}
#: Every staff role manages their own API tokens.
OWN_TOKEN_ENDPOINTS = {"exports.token_create", "exports.token_revoke"}


def _page_routes(app) -> list[tuple[str, str, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("exports.") or rule.rule.startswith(
            "/exports/api/"
        ):
            continue
        url = re.sub(r"<int:[a-z_]+>", "1", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, url))
    return out


def test_every_page_route_is_guarded(app) -> None:
    routes = _page_routes(app)
    endpoints = {endpoint for endpoint, _, _ in routes}
    assert WRITE_ENDPOINTS | OWN_TOKEN_ENDPOINTS <= endpoints
    assert len(routes) == 18
    # Besides the blueprint guard, every page view names its roles.
    for endpoint in endpoints:
        roles = app.view_functions[endpoint].allowed_roles
        if endpoint in WRITE_ENDPOINTS:
            assert set(roles) == {"finance", "admin"}, endpoint
        else:
            assert set(roles) == {"finance", "admin", "viewer"}, endpoint


@pytest.mark.parametrize("role", ["anonymous", "contact", "viewer", "finance", "admin"])
def test_role_matrix_for_every_page_route(app, client, auth, data, role) -> None:
    _login(auth, data, role)
    for endpoint, method, url in _page_routes(app):
        response = client.open(url, method=method, data={})
        code = response.status_code
        where = f"{role} {method} {url}"
        if role == "anonymous":
            assert code in (302, 401), where
            if code == 302:
                assert "/admin/login" in response.headers["Location"], where
        elif role == "contact":
            assert code == 403, where
        elif role == "viewer" and endpoint in WRITE_ENDPOINTS:
            assert code == 403, where
        else:
            assert code not in (401, 403, 500), where


# ------------------------------------------------------ ready-to-export page


def test_index_lists_ready_billings_and_the_no_direct_export_note(
    client, auth, data
) -> None:
    auth.login_user(data.finance_id)
    page = client.get("/exports/?format=sage300")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Viewpoint Spectrum, Viewpoint Vista, Sage 100 Contractor" in html
    assert "no direct export; use CSV" in html
    assert html.count('name="billing_id"') == 2
    assert "$22,775.00" in html and "$23,700.00" in html
    assert "Create batch" in html and 'data-busy="Creating batch…"' in html
    assert "Held back" not in html


def test_index_flags_missing_codes_per_billing(app, client, auth, data) -> None:
    with app.app_context():
        db.session.get(Vendor, data.vendor_id).erp_vendor_code = None
        db.session.commit()
    auth.login_user(data.finance_id)
    html = client.get("/exports/?format=sage300").get_data(as_text=True)
    assert html.count("Held back") == 2
    assert "Missing vendor code for Example Electric" in html
    assert html.count("disabled") >= 2
    # QuickBooks names vendors, it needs no vendor code.
    html = client.get("/exports/?format=iif").get_data(as_text=True)
    assert "Held back" not in html


def test_viewer_sees_the_page_without_checkboxes(client, auth, data) -> None:
    auth.login_user(data.viewer_id)
    html = client.get("/exports/").get_data(as_text=True)
    assert 'name="billing_id"' not in html
    assert "Read only" in html


def test_create_download_and_reverse_from_the_pages(app, client, auth, data) -> None:
    auth.login_user(data.finance_id)
    response = client.post(
        "/exports/batches",
        data={
            "format": "iif",
            "billing_id": [str(data.billing1_id), str(data.billing2_id)],
            "include_vendors": "1",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        batch = db.session.scalar(sa.select(ExportBatch))
        batch_id, content = batch.id, batch.content
    assert response.headers["Location"].endswith(f"/exports/batches/{batch_id}")
    page = client.get(f"/exports/batches/{batch_id}")
    assert f"Batch {batch_id} created with 2 billings" in page.get_data(as_text=True)
    # Its total in the project's currency (issue 14 item 15), on every list.
    with app.app_context():
        total = db.session.get(ExportBatch, batch_id).total_amount
    shown = f"${total:,.2f}"
    assert f'<dd class="col-sm-9">{shown}</dd>' in page.get_data(as_text=True)
    assert f'<td class="num">{shown}</td>' in client.get("/exports/batches").text
    assert f'<td class="num">{shown}</td>' in client.get("/exports/").text

    first = client.get(f"/exports/batches/{batch_id}/download")
    second = client.get(f"/exports/batches/{batch_id}/download")
    assert first.status_code == 200 and first.data == second.data == content
    assert first.data.startswith(b"!VEND\tNAME")
    assert "attachment" in first.headers["Content-Disposition"]

    # Nothing left to export now.
    html = client.get("/exports/").get_data(as_text=True)
    assert "Nothing to export" in html

    no_reason = client.post(
        f"/exports/batches/{batch_id}/reverse", data={"reason": " "}
    )
    assert no_reason.status_code == 400
    assert "Give a reason" in no_reason.get_data(as_text=True)
    long_reason = "Imported twice " * 140  # over 2,000 characters
    too_long = client.post(
        f"/exports/batches/{batch_id}/reverse", data={"reason": long_reason}
    )
    assert too_long.status_code == 400
    html = too_long.get_data(as_text=True)
    assert "Use at most 2000 characters." in html
    assert f">{long_reason}</textarea>" in html  # what was typed comes back
    with app.app_context():
        assert db.session.get(ExportBatch, batch_id).reversed_at is None

    done = client.post(
        f"/exports/batches/{batch_id}/reverse", data={"reason": "Wrong company file."}
    )
    assert done.status_code == 302
    html = client.get(f"/exports/batches/{batch_id}").get_data(as_text=True)
    assert "2 billings can be exported again" in html
    assert "Wrong company file." in html and "file.." not in html
    with app.app_context():
        assert db.session.get(Billing, data.billing1_id).export_batch_id is None
    again = client.post(f"/exports/batches/{batch_id}/reverse", data={"reason": "x"})
    assert again.status_code == 302
    assert "already been reversed" in client.get(again.headers["Location"]).get_data(
        as_text=True
    )
    # The reversed batch still downloads the same bytes.
    assert client.get(f"/exports/batches/{batch_id}/download").data == content


def test_create_refuses_unready_and_empty_selections(app, client, auth, data) -> None:
    with app.app_context():
        db.session.get(Project, data.project_id).erp_job_number = None
        db.session.commit()
    auth.login_user(data.finance_id)
    response = client.post(
        "/exports/batches",
        data={"format": "csv", "billing_id": [str(data.billing2_id)], "f_project": "1"},
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "Nothing was exported" in html
    assert "SC-100 #2: Missing job number for project 1024" in html
    empty = client.post(
        "/exports/batches", data={"format": "csv"}, follow_redirects=True
    )
    assert "Select at least one billing" in empty.get_data(as_text=True)
    bad = client.post(
        "/exports/batches",
        data={"format": "pdf", "billing_id": ["1"]},
        follow_redirects=True,
    )
    assert "Choose an export format" in bad.get_data(as_text=True)
    junk = client.post(
        "/exports/batches",
        data={"format": "csv", "billing_id": ["abc"]},
        follow_redirects=True,
    )
    assert junk.status_code == 200
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ExportBatch.id))) == 0


def test_batches_list_and_404(app, client, auth, data) -> None:
    auth.login_user(data.viewer_id)
    assert "No batches yet" in client.get("/exports/batches").get_data(as_text=True)
    assert client.get("/exports/batches/999").status_code == 404
    assert client.get("/exports/batches/999/download").status_code == 404


def _approved_billing(
    commitment: Commitment, period: BillingPeriod, admin: User
) -> None:
    billing = billings.create_billing(commitment, period, admin)
    line = commitment.sov_lines[0]
    billings.save_billing(
        billing,
        admin,
        billings.BillingInput(lines={line.id: ("100.00", "0")}),
        billing.version,
    )
    billings.submit_billing(billing, admin, billing.version)
    billings.approve_billing(billing, admin, billing.version)


def test_index_query_count_does_not_grow_with_billings(app, client, auth, data) -> None:
    def count_queries() -> int:
        with counting(app) as statements:
            assert client.get("/exports/?format=sage300").status_code == 200
        return len(statements)

    auth.login_user(data.finance_id)
    before = count_queries()
    with app.app_context():
        admin = db.session.get(User, data.admin_id)
        project = db.session.get(Project, data.project_id)
        period = db.session.get(BillingPeriod, data.period2_id)
        for _ in range(4):
            commitment = f.make_commitment(project, lines=[("26-100", "5000.00")])
            _approved_billing(commitment, period, admin)
        db.session.commit()
    after = count_queries()
    html = client.get("/exports/?format=sage300").get_data(as_text=True)
    assert html.count('name="billing_id"') == 6
    assert after == before


# ------------------------------------------------------------ ERP settings


def test_finance_saves_accounts_with_an_audit_event(app, client, auth, data) -> None:
    auth.login_user(data.finance_id)
    form = {
        "ap_account": "2000 · Accounts Payable",
        "retainage_payable_account": "2100 · Retainage Payable",
        "default_expense_account": "5000 · Job Costs",
        "default_sage_category": "S",
        "default_qb_class": "",
    }
    response = client.post("/exports/settings", data=form)
    assert response.status_code == 302
    with app.app_context():
        row = db.session.get(ErpSettings, 1)
        assert row.ap_account == "2000 · Accounts Payable"
        assert row.default_qb_class == ""
        event = db.session.scalar(
            sa.select(AuditEvent).where(AuditEvent.action == "erp.settings")
        )
        assert event.before["ap_account"] == "Accounts Payable"
        assert event.after["ap_account"] == "2000 · Accounts Payable"
    page = client.get("/exports/settings").get_data(as_text=True)
    assert "2000 · Accounts Payable" in page


def test_settings_errors_are_shown_and_nothing_saved(app, client, auth, data) -> None:
    auth.login_user(data.finance_id)
    response = client.post(
        "/exports/settings",
        data={"ap_account": "AP\tmain", "retainage_payable_account": "x" * 61},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "without tabs or line breaks" in html
    assert "Use at most 60 characters" in html
    with app.app_context():
        assert db.session.get(ErpSettings, 1).ap_account == "Accounts Payable"


def test_viewer_reads_settings_but_cannot_save(app, client, auth, data) -> None:
    auth.login_user(data.viewer_id)
    html = client.get("/exports/settings").get_data(as_text=True)
    assert "Accounts Payable" in html and "disabled" in html
    assert "Save settings" not in html
    assert client.post("/exports/settings", data={"ap_account": "X"}).status_code == 403
    with app.app_context():
        assert db.session.get(ErpSettings, 1).ap_account == "Accounts Payable"


def test_cost_code_page_lists_and_saves_codes(app, client, auth, data) -> None:
    auth.login_user(data.admin_id)
    html = client.get("/exports/settings/cost-codes").get_data(as_text=True)
    codes = re.findall(r'name="cc-(\d+)-code" value="([^"]+)"', html)
    assert [code for _, code in codes] == ["03-300", "26-100", "26-200", "26-300"]
    form = {}
    for index, code in codes:
        form[f"cc-{index}-code"] = code
        form[f"cc-{index}-expense_account"] = ""
        form[f"cc-{index}-sage_cost_code"] = ""
        form[f"cc-{index}-sage_category"] = ""
        form[f"cc-{index}-qb_class"] = ""
    form["cc-0-expense_account"] = "Concrete costs"
    form["cc-0-sage_cost_code"] = "03-300"
    form["cc-1-sage_cost_code"] = "26-100"
    form["cc-1-expense_account"] = "Job Costs:Electrical"
    form["cc-2-sage_cost_code"] = "26-200"
    form["cc-3-sage_cost_code"] = "26-300"
    form["cc-3-expense_account"] = "Job Costs:Switchgear"
    form["cc-3-sage_category"] = "M"
    form["cc-3-qb_class"] = "Equipment"
    response = client.post("/exports/settings/cost-codes", data=form)
    assert response.status_code == 302
    with app.app_context():
        rows = {r.cost_code: r for r in db.session.scalars(sa.select(ErpCostCode))}
        assert rows["03-300"].expense_account == "Concrete costs"
        assert rows["03-300"].sage_cost_code == "03-300"
    bad = dict(form, **{"cc-1-qb_class": "x" * 61})
    response = client.post("/exports/settings/cost-codes", data=bad)
    assert response.status_code == 400
    assert "Use at most 60 characters" in response.get_data(as_text=True)


def test_fill_sage_cost_codes(app, client, auth, data) -> None:
    with app.app_context():
        db.session.execute(sa.update(ErpCostCode).values(sage_cost_code=""))
        db.session.commit()
    auth.login_user(data.finance_id)
    response = client.post(
        "/exports/settings/cost-codes/fill-sage", follow_redirects=True
    )
    assert "Filled 4 blank Sage cost codes" in response.get_data(as_text=True)
    with app.app_context():
        rows = {
            r.cost_code: r.sage_cost_code
            for r in db.session.scalars(sa.select(ErpCostCode))
        }
        assert rows == {c: c for c in ("03-300", "26-100", "26-200", "26-300")}


def test_vendor_codes_are_unique_and_can_be_swapped(app, client, auth, data) -> None:
    with app.app_context():
        vendors = {v.name: v.id for v in db.session.scalars(sa.select(Vendor))}
        other_code = db.session.get(Vendor, vendors["Other Vendor"]).erp_vendor_code
    ee, other = vendors["Example Electric"], vendors["Other Vendor"]
    auth.login_user(data.finance_id)
    dup = client.post(
        "/exports/settings/vendors",
        data={f"vendor-{ee}": "SAME", f"vendor-{other}": "same"},
    )
    assert dup.status_code == 400
    assert "Two vendors cannot share a vendor code" in dup.get_data(as_text=True)
    clash = client.post("/exports/settings/vendors", data={f"vendor-{ee}": other_code})
    assert clash.status_code == 400
    assert f"Other Vendor already has code {other_code}" in clash.get_data(as_text=True)
    swap = client.post(
        "/exports/settings/vendors",
        data={f"vendor-{ee}": other_code, f"vendor-{other}": "EXEL"},
    )
    assert swap.status_code == 302
    with app.app_context():
        assert db.session.get(Vendor, ee).erp_vendor_code == other_code
        assert db.session.get(Vendor, other).erp_vendor_code == "EXEL"
    unknown = client.post("/exports/settings/vendors", data={"vendor-99999": "X"})
    assert unknown.status_code == 400


def test_project_job_numbers(app, client, auth, data) -> None:
    auth.login_user(data.finance_id)
    pid = data.project_id
    response = client.post(
        "/exports/settings/projects",
        data={f"project-{pid}-job": "24-001", f"project-{pid}-qb": "Client:Job 24"},
    )
    assert response.status_code == 302
    with app.app_context():
        project = db.session.get(Project, pid)
        assert (project.erp_job_number, project.qb_customer_job) == (
            "24-001",
            "Client:Job 24",
        )
    cleared = client.post(
        "/exports/settings/projects",
        data={f"project-{pid}-job": "", f"project-{pid}-qb": "Client:Job 24"},
    )
    assert cleared.status_code == 302
    with app.app_context():
        assert db.session.get(Project, pid).erp_job_number is None
    html = client.get("/exports/?format=csv").get_data(as_text=True)
    assert "Missing job number for project 1024" in html


# -------------------------------------------------------------- API tokens


def test_token_is_shown_once_and_stored_hashed(app, client, auth, data) -> None:
    auth.login_user(data.finance_id)
    response = client.post("/exports/tokens", data={"name": "Sage import"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    raw = re.search(r'id="new-token" type="text" value="(pbt_[^"]+)"', html).group(1)
    with app.app_context():
        token = db.session.scalar(
            sa.select(ApiToken).where(ApiToken.name == "Sage import")
        )
        assert token.token_hash == hash_token(raw)
        assert raw.startswith(token.prefix) and len(token.prefix) == 12
        assert raw not in str(
            [e.after for e in db.session.scalars(sa.select(AuditEvent))]
        )
    listing = client.get("/exports/tokens").get_data(as_text=True)
    assert raw not in listing and f"{token.prefix}…" in listing
    ok = client.get(
        "/exports/api/v1/batches", headers={"Authorization": f"Bearer {raw}"}
    )
    assert ok.status_code == 200


def test_token_revoke_and_ownership(app, client, auth, data) -> None:
    with app.app_context():
        viewer_token = db.session.scalar(
            sa.select(ApiToken.id).where(ApiToken.user_id == data.viewer_id)
        )
        own = db.session.scalar(
            sa.select(ApiToken.id).where(ApiToken.user_id == data.finance_id)
        )
    auth.login_user(data.finance_id)
    assert client.post(f"/exports/tokens/{viewer_token}/revoke").status_code == 404
    response = client.post(f"/exports/tokens/{own}/revoke", follow_redirects=True)
    assert "revoked" in response.get_data(as_text=True)
    again = client.post(f"/exports/tokens/{own}/revoke", follow_redirects=True)
    assert "already revoked" in again.get_data(as_text=True)
    refused = client.get(
        "/exports/api/v1/batches",
        headers={"Authorization": f"Bearer {data.tokens['finance']}"},
    )
    assert refused.status_code == 401
    with app.app_context():
        assert db.session.get(ApiToken, viewer_token).revoked_at is None
        assert (
            db.session.scalar(
                sa.select(sa.func.count(AuditEvent.id)).where(
                    AuditEvent.action == "api_token.revoke"
                )
            )
            == 1
        )


def test_token_name_is_required(client, auth, data) -> None:
    auth.login_user(data.viewer_id)
    response = client.post("/exports/tokens", data={"name": "  "})
    assert response.status_code == 400
    assert "Name the token" in response.get_data(as_text=True)
    long = client.post("/exports/tokens", data={"name": "x" * 81})
    assert long.status_code == 400


def test_a_refused_token_name_comes_back_as_typed(client, auth, data) -> None:
    auth.login_user(data.viewer_id)
    response = client.post("/exports/tokens", data={"name": "Sage import " * 8})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="name-error">Use at most 80 characters.' in html
    assert f'value="{"Sage import " * 8}"' in html


def test_unreadable_filters_and_page_are_ignored(client, auth, data) -> None:
    auth.login_user(data.finance_id)
    page = client.get("/exports/?format=bogus&project=abc&vendor=-1&period=0&page=x")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('name="billing_id"') == 2
    assert client.get("/exports/batches?page=%00").status_code == 200


def test_index_holds_back_a_sage_invoice_with_negative_net_payable(
    app, client, auth, data
) -> None:
    """Issue 13 item 8 on the ready page: stored materials at 0 % installed
    into work at 20 %: 351.21 this period, 928.35 retainage held this period."""
    from tests.helpers import bill

    with app.app_context():
        project = db.session.get(Project, data.project_id)
        admin = db.session.get(User, data.admin_id)
        commitment = f.make_commitment(
            project,
            db.session.get(Vendor, data.vendor_id),
            [("26-100", "10000.00")],
            work_pct="20",
            materials_pct="0",
            number="PO-777",
        )
        bill(
            commitment,
            db.session.get(BillingPeriod, data.period1_id),
            admin,
            {1: ("0", "4290.54")},
        )
        second = bill(
            commitment,
            db.session.get(BillingPeriod, data.period2_id),
            admin,
            # all 4,290.54 stored installed (F carries to 0), none newly stored
            {1: ("4641.75", "0", "4290.54")},
        )
        second_id = second.id
        db.session.commit()
    auth.login_user(data.finance_id)
    html = client.get("/exports/?format=sage300").get_data(as_text=True)
    at = html.index(f'id="billing-{second_id}"')
    row = html[html.rindex("<tr", 0, at) : html.index("</tr>", at)]
    assert "Held back" in row
    assert "Current payment due is -577.14" in row
    assert "amount this period 351.21 less retainage held this period 928.35" in row
    assert "disabled" in row
    # CSV takes it as it is.
    html = client.get("/exports/?format=csv").get_data(as_text=True)
    assert "Current payment due is -577.14" not in html
