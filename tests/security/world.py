"""One database with an object in every state a form needs, for the walks over
the URL map (role matrix, headers, the input fuzz).

Built through the real domain functions (portal.billing.billings, portal.upstream,
portal.finance.batches...) on top of SPEC §4's worked example, so every page the
product has shows its forms: a draft the contact can edit, a billing under
review, approved billings ready to export, an export batch, a draft and a
submitted upstream claim, a pending change order, an invitation, an
attachment, a failed mail and an API token.
"""

from __future__ import annotations

import hashlib
from datetime import date
from types import SimpleNamespace

from portal import upstream
from portal.accounts import api_tokens, tokens
from portal.billing import invitations
from portal.core.statuses import PeriodStatus
from portal.extensions import db
from portal.finance import batches as export_batches
from portal.models import BillingPeriod, ClientContract, Commitment, Contact, User

from .. import factories as f
from ..helpers import STAFF, Contract, bill, build_world

PDF_BYTES = b"%PDF-1.4\n% a small invoice\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def build_full_world(today: date) -> SimpleNamespace:
    """Every state a page can show a form for (needs an app context; commits)."""
    # b1 approved (period 1), b2 as noted (period 2); contract A (markup 5 %)
    # has no line for 26-200: its claim lists unmapped amounts.
    world = build_world(
        today,
        staff=STAFF,
        approved=True,
        erp=True,
        contract=Contract((("26-100", "90000"),), markup="5"),
    )
    admin = db.session.get(User, world.admin_id)
    finance = db.session.get(User, world.finance_id)
    project = db.session.get(Commitment, world.commitment_id).project
    period2 = db.session.get(BillingPeriod, world.period2_id)
    period2.due_date = date(2099, 12, 31)  # contacts may still bill in it
    casey = db.session.get(Contact, world.contact_id)
    olive = db.session.get(Contact, world.other_contact_id)

    # Casey's second commitment: an invitation and a draft to edit.
    third = f.make_commitment(
        project,
        casey.vendor,
        [("26-100", "20000.00"), ("26-300", "5000.00")],
        [casey],
        number="SC-300",
    )
    invited = invitations.invite(period2, [third], admin).invited[0]
    draft = bill(
        third,
        period2,
        casey,
        {1: ("1000.00", "0")},
        decide="draft",
        invoice="EE-3001",
        notes="First draft",
    )
    stored = hashlib.sha256(f"{draft.id}".encode()).hexdigest()[:32]
    attachment = f.make_attachment(draft.id, PDF_BYTES, stored, contact=casey)

    # Casey's third commitment has no billing yet (start / create forms), a
    # second contact at Casey's vendor is on no commitment (add-contact form),
    # and a draft commitment can still change its lines.
    unbilled = f.make_commitment(
        project, casey.vendor, [("26-100", "3000.00")], [casey], number="SC-400"
    )
    f.make_contact(casey.vendor, name="Second Contact", email="second@ee.example")
    draft_commitment = f.make_commitment(
        project, casey.vendor, [("26-100", "1000.00")], number="SC-500", status="draft"
    )

    # Olive's billing in period 2, submitted: the review and decision forms.
    other = db.session.get(Commitment, world.other_commitment_id)
    review = bill(
        other, period2, olive, {1: ("5000.00", "0")}, decide="review", invoice=""
    )

    co, item = f.make_pending_change_order(world.commitment_id, world.line_ids[0])

    # Upstream: a draft claim (period 1, contract A) and a submitted one (period 2).
    contract = db.session.get(ClientContract, world.contract_id)
    submitted_contract = f.make_client_contract(project, [("26-100", "90000")])
    period1 = db.session.get(BillingPeriod, world.period1_id)
    draft_claim = upstream.generate_claim(contract, period1, admin)
    sent_claim = upstream.generate_claim(submitted_contract, period2, admin)
    upstream.submit_claim(sent_claim, admin, accept_unmapped=True)
    draft_contract = f.make_client_contract(project, [("26-100", "1000")])
    draft_contract.status = "draft"

    # Exports: batch billing 1 (reversible), leave billing 2 ready.
    batch = export_batches.create_batch(finance, "csv", [world.billing1_id])
    api_token, _ = api_tokens.create_token(finance, "Fuzz tool")

    # An empty future period (open/close/delete/edit forms) and a failed mail.
    spare = f.make_period(
        project,
        3,
        start=date(2099, 1, 1),
        end=date(2099, 1, 31),
        due=date(2099, 1, 25),
        status=PeriodStatus.CLOSED,
    )
    # A project with nothing blocking its period's owner invoice: the close
    # checklist's generate form.
    ready_project = f.make_project(name="Ready Project")
    f.make_client_contract(ready_project, [("26-100", "1000")])
    ready_period = f.make_period(
        ready_project,
        1,
        start=date(2099, 2, 1),
        end=date(2099, 2, 28),
        due=date(2099, 2, 25),
    )
    message = f.make_failed_message()
    _, token = tokens.issue_link(casey)
    db.session.flush()
    out = SimpleNamespace(
        **vars(world),
        token=token,
        third_commitment_id=third.id,
        unbilled_commitment_id=unbilled.id,
        draft_commitment_id=draft_commitment.id,
        draft_contract_id=draft_contract.id,
        third_line_ids=[line.id for line in third.sov_lines],
        invitation_id=invited.id,
        draft_id=draft.id,
        review_id=review.id,
        attachment_id=attachment.id,
        change_order_id=co.id,
        item_id=item.id,
        client_line_id=world.client_line_ids[0],
        submitted_contract_id=submitted_contract.id,
        draft_claim_id=draft_claim.id,
        draft_claim_line_id=draft_claim.lines[0].id,
        sent_claim_id=sent_claim.id,
        batch_id=batch.id,
        api_token_id=api_token.id,
        spare_period_id=spare.id,
        ready_period_id=ready_period.id,
        message_id=message.id,
    )
    db.session.commit()
    return out


def url_params(ids: SimpleNamespace, endpoint: str) -> dict[str, int]:
    """Values for every URL argument of ``endpoint`` in the full world."""
    params = {
        "project_id": ids.project_id,
        "vendor_id": ids.vendor_id,
        "contact_id": ids.contact_id,
        "commitment_id": ids.commitment_id,
        "period_id": ids.period2_id,
        "billing_id": ids.review_id,
        "contract_id": ids.contract_id,
        "change_order_id": ids.change_order_id,
        "item_id": ids.item_id,
        "attachment_id": ids.attachment_id,
        "user_id": ids.viewer_id,
        "message_id": ids.message_id,
        "line_id": ids.line_ids[0],
        "claim_id": ids.draft_claim_id,
        "batch_id": ids.batch_id,
        "token_id": ids.api_token_id,
        "invitation_id": ids.invitation_id,
    }
    if endpoint.startswith("admin.client_line"):
        params["line_id"] = ids.client_line_id
    if endpoint.startswith("admin.claim_line"):
        params["line_id"] = ids.draft_claim_line_id
    if endpoint in ("admin.claim_approve", "admin.claim_back_to_draft"):
        params["claim_id"] = ids.sent_claim_id
    if endpoint in ("admin.period_delete", "admin.period_open", "admin.period_edit"):
        params["period_id"] = ids.spare_period_id
    if endpoint.startswith("admin.period_close_"):
        params["period_id"] = ids.ready_period_id
    if endpoint == "admin.billing_edit":
        params["billing_id"] = ids.draft_id
    if endpoint.startswith("contact."):
        params["billing_id"] = ids.draft_id
        params["commitment_id"] = ids.third_commitment_id
    if endpoint.startswith("exports.api_billing"):
        params["billing_id"] = ids.billing2_id
    return params


def build_light_world(today: date) -> SimpleNamespace:
    """SPEC §4's example with a draft (Casey) and a billing under review (Olive)."""
    world = build_world(today)
    casey = db.session.get(Contact, world.contact_id)
    olive = db.session.get(Contact, world.other_contact_id)
    period = db.session.get(BillingPeriod, world.period1_id)
    commitment = db.session.get(Commitment, world.commitment_id)
    draft = bill(
        commitment, period, casey, {1: ("1000.00", "0")}, decide="draft", invoice=""
    )
    other = db.session.get(Commitment, world.other_commitment_id)
    review = bill(
        other, period, olive, {1: ("5000.00", "0")}, decide="review", invoice=""
    )
    db.session.commit()
    return SimpleNamespace(**vars(world), draft_id=draft.id, review_id=review.id)
