"""The claim pages through the Flask test client: flows, errors, roles."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal import upstream
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Billing,
    BillingPeriod,
    ClientClaim,
    ClientContract,
    CostCodeMapping,
    User,
)

from .. import factories as f
from .scenario import build

D = Decimal


@pytest.fixture
def w(app):
    with app.app_context():
        world = build()
        world.viewer_id = f.make_user("viewer").id
        world.finance_id = f.make_user("finance").id
        vendor = f.make_vendor()
        world.contact_id = f.make_contact(vendor).id
        db.session.commit()
    return world


def make_claim(app, w):
    with app.app_context():
        claim = upstream.generate_claim(
            db.session.get(ClientContract, w.contract_id),
            db.session.get(BillingPeriod, w.period1_id),
            db.session.get(User, w.admin_id),
        )
        db.session.commit()
        return claim.id


def claim_state(app, claim_id):
    with app.app_context():
        claim = db.session.get(ClientClaim, claim_id)
        return claim.status, claim.version


def test_index_and_generate_flow(app, client, auth, w):
    auth.login_user(w.admin_id)
    page = client.get("/admin/claims")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Owner invoices" in html and "Generate claim" in html
    assert "No claims yet for this contract." in html
    response = client.post(
        "/admin/claims/generate",
        data={"contract_id": w.contract_id, "period_id": w.period1_id},
    )
    assert response.status_code == 302
    with app.app_context():
        claim = db.session.scalars(sa.select(ClientClaim)).one()
        assert claim.status == "draft"
        assert {b.id for b in claim.billings} == {
            w.billings["concrete"],
            w.billings["electric"],
            w.billings["plumbing"],
        }
        claim_id = claim.id
    assert response.headers["Location"].endswith(f"/admin/claims/{claim_id}")
    view = client.get(f"/admin/claims/{claim_id}").get_data(as_text=True)
    assert "Owner invoice #1" in view
    assert "$47,680.27" in view  # L2 this period
    assert "99-999" in view and "Unmapped downstream amounts" in view
    assert "$79,294.73" in view  # current payment due
    listing = client.get("/admin/claims").get_data(as_text=True)
    assert "$87,585.82" in listing and "Draft" in listing
    # A second generation for the same pair is refused with a message.
    again = client.post(
        "/admin/claims/generate",
        data={"contract_id": w.contract_id, "period_id": w.period1_id},
        follow_redirects=True,
    )
    assert "already exists" in again.get_data(as_text=True)


def test_generate_form_errors(client, auth, w):
    auth.login_user(w.admin_id)
    response = client.post("/admin/claims/generate", data={"contract_id": "x"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="contract_id-error"' in html and 'id="period_id-error"' in html


def test_adjust_map_submit_approve_void_through_pages(app, client, auth, w):
    claim_id = make_claim(app, w)
    auth.login_user(w.admin_id)
    with app.app_context():
        claim = db.session.get(ClientClaim, claim_id)
        l4 = next(ln for ln in claim.lines if ln.client_sov_line.cost_code == "01-500")
        l2_sov = next(s for s in claim.contract.lines if s.cost_code == "26-100")
        l4_id, l2_sov_id, version = l4.id, l2_sov.id, claim.version
    line_page = client.get(f"/admin/claims/{claim_id}/lines/{l4_id}")
    assert line_page.status_code == 200
    assert "Hand adjustment" in line_page.get_data(as_text=True)
    # Invalid adjustment: field errors, nothing saved.
    bad = client.post(
        f"/admin/claims/{claim_id}/lines/{l4_id}/adjust",
        data={"work": "12abc", "materials": "", "reason": "", "version": version},
    )
    assert bad.status_code == 400
    assert 'id="work-error"' in bad.get_data(as_text=True)
    assert claim_state(app, claim_id) == ("draft", version)
    ok = client.post(
        f"/admin/claims/{claim_id}/lines/{l4_id}/adjust",
        data={
            "work": "5,000.00",
            "materials": "0",
            "reason": "Self-performed supervision",
            "version": version,
        },
    )
    assert ok.status_code == 302
    status, version = claim_state(app, claim_id)
    # Map the unmapped code to L2 and regenerate in one go.
    mapped = client.post(
        f"/admin/claims/{claim_id}/map",
        data={
            "cost_code": "99-999",
            "client_sov_line_id": l2_sov_id,
            "version": version,
        },
    )
    assert mapped.status_code == 302
    with app.app_context():
        claim = db.session.get(ClientClaim, claim_id)
        assert claim.unmapped == []
        assert (
            db.session.scalars(sa.select(CostCodeMapping)).one().cost_code == "99-999"
        )
        l2 = next(ln for ln in claim.lines if ln.client_sov_line_id == l2_sov_id)
        assert l2.work_this_period == D("49038.29")  # 44,580.26 x 1.10
        version = claim.version
    trace = client.get(f"/admin/claims/{claim_id}/trace").get_data(as_text=True)
    assert "mapped" in trace and "SC-002" in trace
    # A stale form is refused, with a clear message and no change.
    stale = client.post(
        f"/admin/claims/{claim_id}/submit",
        data={"version": version - 1},
        follow_redirects=True,
    )
    assert "changed by someone else meanwhile" in stale.get_data(as_text=True)
    assert claim_state(app, claim_id) == ("draft", version)
    submitted = client.post(
        f"/admin/claims/{claim_id}/submit", data={"version": version}
    )
    assert submitted.status_code == 302
    status, version = claim_state(app, claim_id)
    assert status == "submitted"
    # Frozen: regenerate refused.
    refused = client.post(
        f"/admin/claims/{claim_id}/regenerate",
        data={"version": version},
        follow_redirects=True,
    )
    assert "frozen" in refused.get_data(as_text=True)
    # Approve with a client amount and the held plumbing billing.
    form = client.get(f"/admin/claims/{claim_id}/approve")
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    assert f'name="billing-{w.billings["plumbing"]}"' in html
    with app.app_context():
        claim = db.session.get(ClientClaim, claim_id)
        l2 = next(ln for ln in claim.lines if ln.client_sov_line_id == l2_sov_id)
        l2_id = l2.id
    bad = client.post(
        f"/admin/claims/{claim_id}/approve",
        data={
            "version": version,
            f"line-{l2_id}-work": "NaN",
            f"line-{l2_id}-materials": "2750",
        },
    )
    assert bad.status_code == 400
    assert f'id="line-{l2_id}-work-error"' in bad.get_data(as_text=True)
    approved = client.post(
        f"/admin/claims/{claim_id}/approve",
        data={
            "version": version,
            f"line-{l2_id}-work": "45,000.00",
            f"line-{l2_id}-materials": "2,750.00",
            f"billing-{w.billings['plumbing']}": "1",
            "note": "Measured by the client's QS",
        },
    )
    assert approved.status_code == 302
    with app.app_context():
        claim = db.session.get(ClientClaim, claim_id)
        assert claim.status == "approved"
        assert db.session.get(Billing, w.billings["plumbing"]).status == "approved"
        assert [
            e.action
            for e in db.session.scalars(
                sa.select(AuditEvent)
                .where(AuditEvent.object_type == "client_claim")
                .order_by(AuditEvent.id)
            )
        ] == [
            "claim.generate",
            "claim.adjust",
            "claim.regenerate",
            "claim.submit",
            "claim.approve",
        ]
    view = client.get(f"/admin/claims/{claim_id}").get_data(as_text=True)
    assert "Approved by client" in view and "$45,000.00" in view
    period = client.get(f"/admin/claims/periods/{w.period1_id}").get_data(as_text=True)
    assert "Period overview" in period and "Unexplained difference" in period


def test_void_through_the_page_frees_billings(app, client, auth, w):
    claim_id = make_claim(app, w)
    auth.login_user(w.admin_id)
    status, version = claim_state(app, claim_id)
    no_reason = client.post(
        f"/admin/claims/{claim_id}/void",
        data={"version": version, "reason": ""},
        follow_redirects=True,
    )
    assert "Give a reason" in no_reason.get_data(as_text=True)
    assert claim_state(app, claim_id)[0] == "draft"
    done = client.post(
        f"/admin/claims/{claim_id}/void",
        data={"version": version, "reason": "Generated for the wrong contract"},
    )
    assert done.status_code == 302
    with app.app_context():
        assert db.session.get(ClientClaim, claim_id).status == "void"
        assert db.session.get(Billing, w.billings["electric"]).client_claim_id is None


def test_pdf_downloads(app, client, auth, w):
    claim_id = make_claim(app, w)
    auth.login_user(w.viewer_id)
    for url in (
        f"/admin/claims/{claim_id}/pdf",
        f"/admin/billings/{w.billings['electric']}/pdf",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.mimetype == "application/pdf"
        assert response.data.startswith(b"%PDF-")
        assert re.search(
            r"attachment; filename=[\w.-]+\.pdf",
            response.headers["Content-Disposition"],
        )
    assert client.get("/admin/billings/9999/pdf").status_code == 404
    assert client.get("/admin/claims/9999").status_code == 404


def test_roles(app, client, auth, w):
    claim_id = make_claim(app, w)
    status, version = claim_state(app, claim_id)
    with app.app_context():
        line_id = db.session.get(ClientClaim, claim_id).lines[0].id
    reads = [
        "/admin/claims",
        f"/admin/claims/{claim_id}",
        f"/admin/claims/{claim_id}/trace",
        f"/admin/claims/{claim_id}/lines/{line_id}",
        f"/admin/claims/periods/{w.period1_id}",
        f"/admin/claims/{claim_id}/pdf",
    ]
    writes = [
        "/admin/claims/generate",
        f"/admin/claims/{claim_id}/regenerate",
        f"/admin/claims/{claim_id}/map",
        f"/admin/claims/{claim_id}/add-line",
        f"/admin/claims/{claim_id}/lines/{line_id}/adjust",
        f"/admin/claims/{claim_id}/submit",
        f"/admin/claims/{claim_id}/approve",
        f"/admin/claims/{claim_id}/back-to-draft",
        f"/admin/claims/{claim_id}/void",
    ]
    # Anonymous: sent to sign in.
    for url in reads:
        assert client.get(url).status_code in (302, 401), url
    for role in ("viewer", "finance"):
        auth.login_user(getattr(w, f"{role}_id"))
        for url in reads:
            assert client.get(url).status_code == 200, (role, url)
        for url in writes:
            response = client.post(
                url,
                data={
                    "version": version,
                    "contract_id": w.contract_id,
                    "period_id": w.period1_id,
                    "reason": "x",
                },
            )
            assert response.status_code == 403, (role, url)
        html = client.get(f"/admin/claims/{claim_id}").get_data(as_text=True)
        assert "Regenerate" not in html and "Generate claim" not in html
    assert claim_state(app, claim_id) == (status, version)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ClientClaim.id))) == 1
    # A contact never reaches the back office.
    auth.login_contact(w.contact_id)
    assert client.get("/admin/claims").status_code == 403
    assert (
        client.get(f"/admin/billings/{w.billings['electric']}/pdf").status_code == 403
    )


def test_a_bad_amount_in_the_approve_grid_writes_nothing(app, client, auth, w):
    """The grid validates through the form layer: each message beside its line,
    the typed text back, no claim, billing or audit change (even with a held
    billing ticked and a good line beside the bad one)."""
    claim_id = make_claim(app, w)
    with app.app_context():
        claim = db.session.get(ClientClaim, claim_id)
        upstream.submit_claim(
            claim, db.session.get(User, w.admin_id), claim.version, accept_unmapped=True
        )
        db.session.commit()
        first, second = (ln.id for ln in claim.lines[:2])
        events = db.session.scalar(sa.select(sa.func.count(AuditEvent.id)))
    status, version = claim_state(app, claim_id)
    auth.login_user(w.admin_id)
    response = client.post(
        f"/admin/claims/{claim_id}/approve",
        data={
            "version": version,
            f"line-{first}-work": "1,000.00",
            f"line-{first}-materials": "-5",
            f"line-{second}-work": "12abc",
            f"line-{second}-materials": "0",
            f"billing-{w.billings['plumbing']}": "1",
        },
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert f'id="line-{first}-materials-error"' in html
    assert "This amount cannot be negative." in html
    assert f'id="line-{second}-work-error"' in html
    assert f'id="line-{first}-work-error"' not in html
    assert 'value="12abc"' in html
    assert claim_state(app, claim_id) == ("submitted", version)
    with app.app_context():
        assert (
            db.session.get(Billing, w.billings["plumbing"]).status
            == "pending_owner_approval"
        )
        assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id))) == events
        claim = db.session.get(ClientClaim, claim_id)
        assert all(ln.client_approved_work is None for ln in claim.lines)
