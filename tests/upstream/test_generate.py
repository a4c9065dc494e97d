"""SPEC §9: generating, regenerating, adjusting and deciding HC/Client claims.

The world (tests/upstream/scenario.py), head contract HC: markup 10 %, work
retainage 10 %, materials retainage 5 %, lines L1 03-300 200,000.00; L2 26-100
150,000.00; L3 22-100 100,000.00; L4 01-500 50,000.00 (total 500,000.00).

Period 1 downstream billings:
- SC-001 concrete (03-300 x2), approved as claimed: footings work 20,000.00;
  slabs materials stored 6,000.00.
- SC-002 electrical, CO +5,000.00 on fixtures (C 35,000.00): rough-in claimed
  15,000.00 approved 12,345.65 (approved as noted); fixtures work 31,000.05 and
  materials 2,500.00 (33,500.05 > 30,000.00: legal only thanks to the CO);
  99-999 allowance work 1,234.56 (no client line: unmapped).
- SC-003 plumbing 22-100 work 7,777.77, held (pending owner approval).
- SC-004 pumping 03-300 work 1,000.00, still under review (not taken).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal import upstream
from portal.billing import billings as wf
from portal.core.statuses import BillingStatus, LineStatus
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Billing,
    BillingPeriod,
    ClientClaim,
    ClientContract,
    Commitment,
    CostCodeMapping,
    User,
)

from .. import factories as f
from ..helpers import bill
from .scenario import build

D = Decimal


def load(w):
    """The scenario's rows, fresh from the session."""
    return (
        db.session.get(ClientContract, w.contract_id),
        db.session.get(BillingPeriod, w.period1_id),
        db.session.get(User, w.admin_id),
    )


def line_figs(claim: ClientClaim, which: str = "claimed") -> dict[str, object]:
    return {r.sov.cost_code: r.figures for r in upstream.claim_sheet(claim, which).rows}


def claim_line(claim: ClientClaim, code: str):
    return next(ln for ln in claim.lines if ln.client_sov_line.cost_code == code)


@pytest.fixture
def w(ctx):
    return build()


@pytest.fixture
def claim1(w):
    """Claim 1 for period 1 with L4 adjusted by 5,000.00 of self-performed work."""
    contract, period, admin = load(w)
    claim = upstream.generate_claim(contract, period, admin)
    upstream.adjust_line(
        claim,
        claim_line(claim, "01-500"),
        admin,
        "5,000.00",
        "0",
        "Self-performed site supervision",
        claim.version,
    )
    db.session.commit()
    return claim


def test_generate_claim_to_the_cent(w, claim1):
    claim = claim1
    assert claim.claim_number == 1
    assert claim.status == "draft"
    figs = line_figs(claim)
    l1, l2, l3, l4 = figs["03-300"], figs["26-100"], figs["22-100"], figs["01-500"]
    # L1: work 20,000.00 x 1.10 = 22,000.00; materials 6,000.00 x 1.10 = 6,600.00
    assert (l1.work_this_period, l1.materials_stored) == (D("22000.00"), D("6600.00"))
    assert l1.total_completed_and_stored == D("28600.00")
    assert l1.percent_complete == D("14.30")  # 28,600 / 200,000
    assert l1.balance_to_finish == D("171400.00")
    # I = 10 % x 22,000.00 + 5 % x 6,600.00 = 2,200.00 + 330.00
    assert l1.retainage == D("2530.00")
    # L2: (12,345.65 + 31,000.05) = 43,345.70 x 1.10 = 47,680.27 (rounded per
    # upstream line; per downstream line it would be 13,580.22 + 34,100.06 =
    # 47,680.28). Materials 2,500.00 x 1.10 = 2,750.00.
    assert (l2.work_this_period, l2.materials_stored) == (D("47680.27"), D("2750.00"))
    assert l2.total_completed_and_stored == D("50430.27")
    assert l2.percent_complete == D("33.62")  # 50,430.27 / 150,000 = 33.6202 %
    assert l2.balance_to_finish == D("99569.73")
    # I = round(4,768.027) + 137.50 = 4,768.03 + 137.50
    assert l2.retainage == D("4905.53")
    # L3: pending owner approval counts: 7,777.77 x 1.10 = 8,555.547 -> 8,555.55
    assert (l3.work_this_period, l3.materials_stored) == (D("8555.55"), D("0.00"))
    assert l3.percent_complete == D("8.56")  # 8.55555 %
    assert l3.retainage == D("855.56")  # 855.555 -> 855.56 (half-up)
    # L4: nothing downstream; 5,000.00 hand adjustment
    assert (l4.work_this_period, l4.total_completed_and_stored) == (
        D("5000.00"),
        D("5000.00"),
    )
    assert l4.retainage == D("500.00")
    t = upstream.claim_sheet(claim).totals
    assert t.original_contract_sum == D("500000.00")
    assert t.net_change_by_change_orders == D("0.00")
    assert t.contract_sum_to_date == D("500000.00")
    # 4 = 28,600.00 + 50,430.27 + 8,555.55 + 5,000.00
    assert t.total_completed_and_stored == D("92585.82")
    # 5 = 2,530.00 + 4,905.53 + 855.56 + 500.00
    assert t.retainage == D("8791.09")
    assert t.total_earned_less_retainage == D("83794.73")  # 92,585.82 - 8,791.09
    assert t.previous_certificates == D("0.00")
    assert t.current_payment_due == D("83794.73")
    assert t.balance_to_finish_including_retainage == D("416205.27")
    # Stored per line: generated, adjustment, claimed (= generated + adjustment)
    l4_line = claim_line(claim, "01-500")
    assert (l4_line.generated_work, l4_line.adjustment_work) == (
        D("0.00"),
        D("5000.00"),
    )
    assert l4_line.work_this_period == D("5000.00")
    l2_line = claim_line(claim, "26-100")
    assert l2_line.generated_work == l2_line.work_this_period == D("47680.27")
    # Taken: approved, approved as noted, pending owner approval; not under review.
    taken = {b.id for b in claim.billings}
    assert taken == {
        w.billings["concrete"],
        w.billings["electric"],
        w.billings["plumbing"],
    }
    assert db.session.get(Billing, w.billings["late"]).client_claim_id is None
    # Unmapped, listed with commitment, line, cost code and amount.
    assert claim.unmapped == [
        {
            "billing_id": w.billings["electric"],
            "billing_status": "approved_as_noted",
            "application_number": 1,
            "commitment_id": w.commitments["electric"],
            "commitment": "SC-002",
            "vendor": "Bright Electric",
            "sov_line_id": claim.unmapped[0]["sov_line_id"],
            "line_number": 3,
            "cost_code": "99-999",
            "description": "Line 3",
            "work": "1234.56",
            "materials": "0.00",
            "amount": "1234.56",
            "client_sov_line_id": None,
            "via_mapping": False,
        }
    ]


def test_reconciliation_explains_every_difference(w, claim1):
    recon = upstream.reconcile(claim1)
    # 26,000.00 (SC-001) + 47,080.26 (SC-002) + 7,777.77 (SC-003)
    assert recon.downstream_total == D("80858.03")
    assert recon.unmapped == D("1234.56")
    assert recon.placed == D("79623.47")
    # generated 28,600.00 + 50,430.27 + 8,555.55 = 87,585.82; markup = the rest
    assert recon.generated_expected == recon.generated_stored == D("87585.82")
    assert recon.markup == D("7962.35")
    assert recon.adjustments == D("5000.00")
    assert recon.claim_total == D("92585.82")
    assert recon.difference == D("0.00") and recon.ties


def test_traceability_lists_downstream_lines(w, claim1):
    lines, unmapped = upstream.trace(claim1)
    electrical = next(t for t in lines if t.sov.cost_code == "26-100")
    assert [
        (s.commitment_number, s.line_number, s.work) for s in electrical.sources
    ] == [
        ("SC-002", 1, D("12345.65")),
        ("SC-002", 2, D("31000.05")),
    ]
    assert electrical.placed_work == D("43345.70")
    assert electrical.marked_up_work == D("47680.27")
    assert [s.cost_code for s in unmapped] == ["99-999"]


def test_adjustment_is_audited_and_needs_a_reason(w, claim1):
    event = db.session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.action == "claim.adjust", AuditEvent.object_id == claim1.id
        )
    ).one()
    assert event.object_type == "client_claim"
    assert event.after["adjustment_work"] == "5000.00"
    assert event.after["reason"] == "Self-performed site supervision"
    admin = db.session.get(User, w.admin_id)
    with pytest.raises(wf.ValidationFailed) as exc:
        upstream.adjust_line(
            claim1, claim_line(claim1, "03-300"), admin, "100", "", "", claim1.version
        )
    assert "reason" in exc.value.errors
    with pytest.raises(wf.ValidationFailed) as exc:
        upstream.adjust_line(
            claim1,
            claim_line(claim1, "03-300"),
            admin,
            "0",
            "-6,600.01",
            "too much",
            claim1.version,
        )
    assert "materials" in exc.value.errors
    with pytest.raises(wf.ValidationFailed) as exc:
        upstream.adjust_line(
            claim1, claim_line(claim1, "03-300"), admin, "1e5", "0", "x", claim1.version
        )
    assert "work" in exc.value.errors


def test_regenerate_picks_up_new_billing_without_double_counting(w, claim1):
    contract, period, admin = load(w)
    late = db.session.get(Billing, w.billings["late"])
    wf.review_lines(
        late,
        admin,
        {
            bl.id: wf.LineReview("1000.00", "0", LineStatus.APPROVED)
            for bl in late.lines
        },
        late.version,
    )
    wf.approve_billing(late, admin, late.version)
    db.session.commit()
    assert "approved since" in upstream.out_of_date(claim1)
    with pytest.raises(upstream.ClaimError, match="Regenerate"):
        upstream.submit_claim(claim1, admin, claim1.version, accept_unmapped=True)
    db.session.rollback()
    result = upstream.regenerate(claim1, admin, claim1.version)
    db.session.commit()
    assert result == {"added": [w.billings["late"]], "released": []}
    # L1: (20,000.00 + 1,000.00) x 1.10 = 23,100.00; materials unchanged
    figs = line_figs(claim1)
    assert figs["03-300"].work_this_period == D("23100.00")
    assert figs["03-300"].materials_stored == D("6600.00")
    # Regenerating again changes nothing: no billing counted twice.
    upstream.regenerate(claim1, admin, claim1.version)
    db.session.commit()
    figs = line_figs(claim1)
    assert figs["03-300"].work_this_period == D("23100.00")
    assert figs["26-100"].work_this_period == D("47680.27")
    # The hand adjustment survives regeneration.
    assert figs["01-500"].work_this_period == D("5000.00")
    # 4 = 92,585.82 + 1,100.00
    assert upstream.claim_sheet(claim1).totals.total_completed_and_stored == D(
        "93685.82"
    )
    assert {b.id for b in claim1.billings} == {
        w.billings["concrete"],
        w.billings["electric"],
        w.billings["plumbing"],
        w.billings["late"],
    }
    assert upstream.out_of_date(claim1) == ""


def test_mapping_a_cost_code_places_the_unmapped_amount(w, claim1):
    contract, period, admin = load(w)
    electrical = next(s for s in contract.lines if s.cost_code == "26-100")
    upstream.map_cost_code(contract, "99-999", electrical.id, admin)
    upstream.regenerate(claim1, admin, claim1.version)
    db.session.commit()
    assert claim1.unmapped == []
    # (43,345.70 + 1,234.56) = 44,580.26 x 1.10 = 49,038.286 -> 49,038.29
    assert line_figs(claim1)["26-100"].work_this_period == D("49038.29")
    mapping = db.session.scalars(sa.select(CostCodeMapping)).one()
    assert (mapping.cost_code, mapping.client_sov_line_id) == ("99-999", electrical.id)
    # A code that has its own line cannot be mapped elsewhere.
    with pytest.raises(wf.ValidationFailed):
        upstream.map_cost_code(contract, "03-300", electrical.id, admin)


def test_adding_a_client_line_places_the_unmapped_amount(w, claim1):
    contract, period, admin = load(w)
    line = upstream.add_client_line(
        contract, "99-999", "Electrical allowance", "20,000.00", admin
    )
    upstream.regenerate(claim1, admin, claim1.version)
    db.session.commit()
    assert line.line_number == 5
    assert claim1.unmapped == []
    # 1,234.56 x 1.10 = 1,358.016 -> 1,358.02
    assert line_figs(claim1)["99-999"].work_this_period == D("1358.02")
    with pytest.raises(wf.ValidationFailed) as exc:
        upstream.add_client_line(contract, "99-999", "", "abc", admin)
    assert set(exc.value.errors) == {"cost_code", "description", "scheduled_value"}


def test_submitted_claim_is_frozen(w, claim1):
    contract, period, admin = load(w)
    with pytest.raises(upstream.ClaimError, match="unmapped|no line"):
        upstream.submit_claim(claim1, admin, claim1.version)
    upstream.submit_claim(claim1, admin, claim1.version, accept_unmapped=True)
    db.session.commit()
    assert claim1.status == "submitted"
    frozen = claim1.submitted_figures
    assert frozen["figures"]["totals"]["current_payment_due"] == "83794.73"
    # 2 concrete + 3 electrical (1 of them unmapped) + 1 plumbing downstream lines
    assert len(claim1.submitted_trace) == 6
    # The trace is kept apart from the figures every claim page reads.
    assert "trace" not in frozen
    with pytest.raises(upstream.ClaimError, match="frozen"):
        upstream.regenerate(claim1, admin, claim1.version)
    with pytest.raises(upstream.ClaimError, match="frozen"):
        upstream.adjust_line(
            claim1, claim_line(claim1, "03-300"), admin, "1", "0", "x", claim1.version
        )
    # A contract change after submission does not change the frozen figures.
    contract.lines[0].scheduled_value = D("250000.00")
    contract.markup_pct = D("20")
    db.session.commit()
    t = upstream.claim_sheet(claim1).totals
    assert t.contract_sum_to_date == D("500000.00")
    assert t.current_payment_due == D("83794.73")
    assert upstream.reconcile(claim1).ties


def test_stale_version_is_refused(w, claim1):
    contract, period, admin = load(w)
    old = claim1.version
    upstream.regenerate(claim1, admin, old)
    db.session.commit()
    with pytest.raises(upstream.StaleClaim, match="meanwhile"):
        upstream.submit_claim(claim1, admin, old, accept_unmapped=True)
    db.session.rollback()
    assert db.session.get(ClientClaim, claim1.id).status == "draft"


def test_back_to_draft_then_edit_and_resubmit(w, claim1):
    contract, period, admin = load(w)
    upstream.submit_claim(claim1, admin, claim1.version, accept_unmapped=True)
    upstream.back_to_draft(claim1, admin, claim1.version, "Client asked for L4 detail")
    db.session.commit()
    assert claim1.status == "draft" and claim1.submitted_figures is None
    assert claim1.submitted_trace is None
    upstream.adjust_line(
        claim1,
        claim_line(claim1, "01-500"),
        admin,
        "4,000",
        "0",
        "Revised",
        claim1.version,
    )
    upstream.submit_claim(claim1, admin, claim1.version, accept_unmapped=True)
    db.session.commit()
    # 83,794.73 - 1,000.00 x (1 - 10 %)
    assert claim1.submitted_figures["figures"]["totals"]["current_payment_due"] == (
        "82894.73"
    )


def test_void_frees_billings_and_a_new_claim_takes_them(w, claim1):
    contract, period, admin = load(w)
    with pytest.raises(wf.ValidationFailed):
        upstream.void_claim(claim1, admin, claim1.version, "  ")
    released = upstream.void_claim(claim1, admin, claim1.version, "Wrong period")
    db.session.commit()
    assert sorted(released) == sorted(
        [w.billings["concrete"], w.billings["electric"], w.billings["plumbing"]]
    )
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).where(Billing.client_claim_id.is_not(None))
        )
        == 0
    )
    again = upstream.generate_claim(contract, period, admin)
    db.session.commit()
    # A draft voided before it reached the client gives its number back.
    assert again.claim_number == 1
    assert {b.id for b in again.billings} == {
        w.billings["concrete"],
        w.billings["electric"],
        w.billings["plumbing"],
    }


def test_billings_are_never_taken_twice(w, claim1):
    contract, period, admin = load(w)
    with pytest.raises(upstream.ClaimError, match="already exists"):
        upstream.generate_claim(contract, period, admin)
    db.session.rollback()
    project = contract.project
    other = f.make_client_contract(project, [("03-300", "10000.00")], markup="0")
    db.session.commit()
    second = upstream.generate_claim(other, period, admin)
    db.session.commit()
    assert second.billings == []
    assert upstream.claim_sheet(second).totals.total_completed_and_stored == D("0.00")


def test_second_claim_takes_d_and_line_7_from_the_first(w, claim1):
    contract, period, admin = load(w)
    period2 = db.session.get(BillingPeriod, w.period2_id)
    upstream.submit_claim(claim1, admin, claim1.version, accept_unmapped=True)
    db.session.commit()
    electrical = claim_line(claim1, "26-100")
    plumbing_billing = db.session.get(Billing, w.billings["plumbing"])
    result = upstream.approve_claim(
        claim1,
        admin,
        claim1.version,
        {electrical.id: ("45,000.00", "2,750.00")},
        [w.billings["plumbing"]],
        "Client measured electrical at 45,000",
    )
    db.session.commit()
    assert result.differs and result.approved_billing_ids == [w.billings["plumbing"]]
    assert plumbing_billing.status == BillingStatus.APPROVED
    # Both kept: claimed 47,680.27 and approved 45,000.00.
    assert electrical.work_this_period == D("47680.27")
    assert electrical.client_approved_work == D("45000.00")
    approved = upstream.claim_sheet(claim1, "approved").totals
    # 4 = 28,600.00 + 47,750.00 + 8,555.55 + 5,000.00; 5 = 2,530.00 + 4,637.50
    # (4,500.00 + 137.50) + 855.56 + 500.00
    assert approved.total_completed_and_stored == D("89905.55")
    assert approved.retainage == D("8523.06")
    assert approved.total_earned_less_retainage == D("81382.49")
    # The claimed figures stay frozen beside them.
    assert upstream.claim_sheet(claim1).totals.current_payment_due == D("83794.73")

    # Period 2: SC-001 bills footings 10,000.00 and slabs work 6,000.00 (the
    # stored materials installed: F back to 0).
    concrete = db.session.get(Commitment, w.commitments["concrete"])
    bill(
        concrete,
        period2,
        admin,
        {1: ("10000.00", "0"), 2: ("6000.00", "0", "6000.00")},
    )
    db.session.commit()
    claim2 = upstream.generate_claim(contract, period2, admin)
    db.session.commit()
    assert claim2.claim_number == 2
    figs = line_figs(claim2)
    # L1: D 22,000.00 (claim 1, client approved as claimed); E 16,000.00 x 1.10
    assert figs["03-300"].previous_work == D("22000.00")
    assert figs["03-300"].work_this_period == D("17600.00")
    assert figs["03-300"].materials_stored == D("0.00")
    assert figs["03-300"].total_completed_and_stored == D("39600.00")
    assert figs["03-300"].retainage == D("3960.00")
    # L2: D is the client's approved 45,000.00, not the claimed 47,680.27
    assert figs["26-100"].previous_work == D("45000.00")
    # The electrical subcontract did not bill in period 2: its 2,500.00 stored
    # (2,750.00 with markup) stays stored upstream (SPEC §9), 5 % retained.
    assert figs["26-100"].materials_stored == D("2750.00")
    assert figs["26-100"].retainage == D("4637.50")  # 4,500.00 + 137.50
    assert figs["22-100"].previous_work == D("8555.55")
    assert figs["01-500"].previous_work == D("5000.00")
    t = upstream.claim_sheet(claim2).totals
    assert t.total_completed_and_stored == D(
        "100905.55"
    )  # 39,600 + 45,000 + 2,750 + 8,555.55 + 5,000
    assert t.retainage == D("9953.06")  # 3,960 + 4,637.50 + 855.56 + 500
    assert t.total_earned_less_retainage == D("90952.49")
    assert t.previous_certificates == D("81382.49")  # line 6 of claim 1 as approved
    assert t.current_payment_due == D("9570.00")
    assert t.balance_to_finish_including_retainage == D("409047.51")


def test_approval_refuses_a_bad_amount_and_writes_nothing(w, claim1):
    contract, period, admin = load(w)
    upstream.submit_claim(claim1, admin, claim1.version, accept_unmapped=True)
    db.session.commit()
    line = claim_line(claim1, "03-300")
    with pytest.raises(wf.ValidationFailed) as exc:
        upstream.approve_claim(
            claim1,
            admin,
            claim1.version,
            {line.id: ("NaN", "-1")},
            [w.billings["plumbing"]],
        )
    assert set(exc.value.errors) == {
        f"line-{line.id}-work",
        f"line-{line.id}-materials",
    }
    db.session.rollback()
    assert db.session.get(ClientClaim, claim1.id).status == "submitted"
    assert (
        db.session.get(Billing, w.billings["plumbing"]).status
        == "pending_owner_approval"
    )
    # Only included billings held for owner approval can be approved with it.
    with pytest.raises(upstream.ClaimError):
        upstream.approve_claim(
            claim1, admin, claim1.version, {}, [w.billings["concrete"]]
        )


def test_claims_go_in_period_order(w, claim1):
    contract, period, admin = load(w)
    period2 = db.session.get(BillingPeriod, w.period2_id)
    claim2 = upstream.generate_claim(contract, period2, admin)
    db.session.commit()
    with pytest.raises(upstream.ClaimError, match="earlier period is still a draft"):
        upstream.submit_claim(claim2, admin, claim2.version, accept_unmapped=True)
    db.session.rollback()
    upstream.void_claim(claim1, admin, claim1.version, "redo")
    db.session.commit()
    with pytest.raises(upstream.ClaimError, match="later period"):
        upstream.generate_claim(contract, period, admin)


def test_only_admins_generate(w):
    contract, period, admin = load(w)
    viewer = f.make_user("viewer")
    with pytest.raises(upstream.ClaimError, match="not allowed"):
        upstream.generate_claim(contract, period, viewer)


def test_voided_downstream_billing_is_released_on_regenerate(w, claim1):
    contract, period, admin = load(w)
    plumbing = db.session.get(Billing, w.billings["plumbing"])
    wf.void_billing(plumbing, admin, plumbing.version, "Wrong commitment")
    db.session.commit()
    assert "voided" in upstream.out_of_date(claim1)
    recon = upstream.reconcile(claim1)
    assert recon.out_of_date == D("8555.55") and not recon.ties
    result = upstream.regenerate(claim1, admin, claim1.version)
    db.session.commit()
    assert result["released"] == [w.billings["plumbing"]]
    assert plumbing.client_claim_id is None
    assert line_figs(claim1)["22-100"].work_this_period == D("0.00")
    assert upstream.reconcile(claim1).ties


def test_approving_a_held_billing_keeps_the_draft_up_to_date(w, claim1):
    contract, period, admin = load(w)
    plumbing = db.session.get(Billing, w.billings["plumbing"])
    wf.approve_billing(plumbing, admin, plumbing.version)
    db.session.commit()
    assert upstream.out_of_date(claim1) == ""
    assert plumbing.client_claim_id == claim1.id


# ------------------------------------------------- claims in period order (§9)


def test_a_later_period_waits_for_the_earlier_periods_claim(app, client, auth, w):
    """Issue 13 item 4: period 1 has three counted billings and no claim, so
    period 2's claim is refused, and the page says so before anything is made."""
    contract, period1, admin = load(w)
    period2 = db.session.get(BillingPeriod, w.period2_id)
    concrete = db.session.get(Commitment, w.commitments["concrete"])
    bill(concrete, period2, admin, {1: ("1000.00", "0")})
    db.session.commit()
    assert [(p.id, n) for p, n in upstream.unclaimed_periods(contract)] == [
        (period1.id, 3),
        (period2.id, 1),
    ]
    auth.login_user(w.admin_id)
    html = client.get("/admin/claims").get_data(as_text=True)
    hint = html[html.index(f'id="waiting-{contract.id}"') :]
    hint = hint[: hint.index("</div>")]
    assert f"{period1.label}: 3 " in hint and "(next)" in hint
    assert f"{period2.label}: 1 " in hint and f"(after {period1.label})" in hint
    with pytest.raises(upstream.ClaimError) as refused:
        upstream.generate_claim(contract, period2, admin)
    db.session.rollback()
    assert str(refused.value) == (
        f"Claims follow the periods in order: {period1.label} (3 counted billings) "
        "has no claim yet. Generate it first."
    )
    assert db.session.scalar(sa.select(sa.func.count(ClientClaim.id))) == 0
    # Through the page: refused with the same message, nothing made.
    response = client.post(
        "/admin/claims/generate",
        data={"contract_id": contract.id, "period_id": period2.id},
        follow_redirects=True,
    )
    assert "has no claim yet. Generate it first." in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(ClientClaim.id))) == 0
    first = upstream.generate_claim(contract, period1, admin)
    second = upstream.generate_claim(contract, period2, admin)
    db.session.commit()
    assert (first.claim_number, second.claim_number) == (1, 2)
    assert upstream.unclaimed_periods(contract) == []


def test_periods_without_counted_billings_or_claimed_elsewhere_do_not_block(w):
    contract, period1, admin = load(w)
    period2 = db.session.get(BillingPeriod, w.period2_id)
    # Another contract of the project takes period 1's billings: claimed.
    other = f.make_client_contract(contract.project, [("03-300", "10000.00")])
    upstream.generate_claim(other, period1, admin)
    db.session.commit()
    assert upstream.unclaimed_periods(contract) == []
    claim = upstream.generate_claim(contract, period2, admin)
    assert claim.claim_number == 1


def test_a_voided_draft_leaves_no_gap_and_a_sent_claim_keeps_its_number(w):
    contract, period1, admin = load(w)
    draft = upstream.generate_claim(contract, period1, admin)
    upstream.void_claim(draft, admin, draft.version, "Generated too early")
    again = upstream.generate_claim(contract, period1, admin)
    db.session.commit()
    assert again.claim_number == 1  # the client never saw the voided draft
    # Sent to the client, sent back, then voided: its number stays used.
    upstream.submit_claim(again, admin, again.version, accept_unmapped=True)
    upstream.back_to_draft(again, admin, again.version)
    assert again.first_submitted_at is not None and again.submitted_at is None
    upstream.void_claim(again, admin, again.version, "Client rejected it")
    third = upstream.generate_claim(contract, period1, admin)
    db.session.commit()
    assert third.claim_number == 2


def test_a_later_draft_is_not_sent_while_an_earlier_period_has_no_claim(w):
    contract, period1, admin = load(w)
    period2 = db.session.get(BillingPeriod, w.period2_id)
    concrete = db.session.get(Commitment, w.commitments["concrete"])
    bill(concrete, period2, admin, {1: ("1000.00", "0")})
    first = upstream.generate_claim(contract, period1, admin)
    later = upstream.generate_claim(contract, period2, admin)
    upstream.void_claim(first, admin, first.version, "Wrong markup")
    db.session.commit()
    # #2 would reach the client before any #1: refused, the page says why.
    with pytest.raises(upstream.ClaimError, match="has no claim yet"):
        upstream.submit_claim(later, admin, later.version, accept_unmapped=True)
    db.session.rollback()
    assert db.session.get(ClientClaim, later.id).status == "draft"
