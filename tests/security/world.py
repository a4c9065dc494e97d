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
import os
from datetime import date
from types import SimpleNamespace

from flask import current_app

from portal import upstream
from portal.accounts import api_tokens, tokens
from portal.billing import billings, invitations
from portal.core.statuses import PeriodStatus
from portal.extensions import db
from portal.finance import batches as export_batches
from portal.models import (
    Attachment,
    BillingPeriod,
    ChangeOrder,
    ChangeOrderItem,
    Commitment,
    Contact,
    OutboxMessage,
    User,
)

from .. import factories as f
from ..exports.conftest import approve_worked_example, configure_erp

PDF_BYTES = b"%PDF-1.4\n% a small invoice\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _attach(billing_id: int, contact: Contact) -> Attachment:
    folder = current_app.config["UPLOAD_FOLDER"]
    os.makedirs(folder, exist_ok=True)
    stored = hashlib.sha256(f"{billing_id}".encode()).hexdigest()[:32]
    with open(os.path.join(folder, stored), "wb") as fh:
        fh.write(PDF_BYTES)
    attachment = Attachment(
        billing_id=billing_id,
        uploaded_by_contact_id=contact.id,
        original_name="invoice.pdf",
        stored_name=stored,
        content_type="application/pdf",
        size=len(PDF_BYTES),
        sha256=hashlib.sha256(PDF_BYTES).hexdigest(),
        kind="invoice",
    )
    db.session.add(attachment)
    db.session.flush()
    return attachment


def build_full_world() -> SimpleNamespace:
    """Every state a page can show a form for (needs an app context; commits)."""
    world = f.build_world()
    ex = approve_worked_example(world)  # b1 approved (period 1), b2 as noted (2)
    configure_erp(world)
    admin = db.session.get(User, world.admin_id)
    finance = f.make_user("finance")
    viewer = f.make_user("viewer")
    project = db.session.get(Commitment, world.commitment_id).project
    period2 = db.session.get(BillingPeriod, ex.period2_id)
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
    draft = billings.create_billing(third, period2, casey)
    billings.save_billing(
        draft,
        casey,
        billings.BillingInput(
            lines={third.sov_lines[0].id: ("1000.00", "0")},
            vendor_invoice_number="EE-3001",
            notes="First draft",
        ),
        draft.version,
    )
    attachment = _attach(draft.id, casey)

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
    review = billings.create_billing(other, period2, olive)
    billings.save_billing(
        review,
        olive,
        billings.BillingInput(lines={other.sov_lines[0].id: ("5000.00", "0")}),
        review.version,
    )
    billings.submit_billing(review, olive, review.version)

    # A pending change order with one item.
    co = ChangeOrder(commitment_id=world.commitment_id, number="CO-P", title="Pending")
    db.session.add(co)
    db.session.flush()
    item = ChangeOrderItem(
        change_order_id=co.id, sov_line_id=world.line_ids[0], amount=f.D("100.00")
    )
    db.session.add(item)

    # Upstream: a draft claim (period 2) and a submitted one (period 1).
    # Contract A has no line for 26-200: its claim lists unmapped amounts.
    contract = f.make_client_contract(project, [("26-100", "90000")], markup="5")
    submitted_contract = f.make_client_contract(project, [("26-100", "90000")])
    period1 = db.session.get(BillingPeriod, world.period1_id)
    draft_claim = upstream.generate_claim(contract, period1, admin)
    sent_claim = upstream.generate_claim(submitted_contract, period2, admin)
    upstream.submit_claim(sent_claim, admin, accept_unmapped=True)
    draft_contract = f.make_client_contract(project, [("26-100", "1000")])
    draft_contract.status = "draft"

    # Exports: batch billing 1 (reversible), leave billing 2 ready.
    batch = export_batches.create_batch(finance, "csv", [ex.billing1_id])
    api_token, _ = api_tokens.create_token(finance, "Fuzz tool")

    # An empty future period (open/close/delete/edit forms) and a failed mail.
    spare = BillingPeriod(
        project_id=world.project_id,
        sequence=3,
        start_date=date(2099, 1, 1),
        end_date=date(2099, 1, 31),
        due_date=date(2099, 1, 25),
        billing_date=date(2099, 1, 31),
        status=PeriodStatus.CLOSED,
    )
    db.session.add(spare)
    message = OutboxMessage(
        kind="invite",
        recipient="x@example.com",
        subject="Hello",
        body_text="t",
        body_html="h",
        status="failed",
        attempts=8,
    )
    db.session.add(message)
    _, token = tokens.issue_link(casey)
    db.session.flush()
    out = SimpleNamespace(
        token=token,
        **vars(ex),
        finance_id=finance.id,
        viewer_id=viewer.id,
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
        contract_id=contract.id,
        client_line_id=contract.lines[0].id,
        submitted_contract_id=submitted_contract.id,
        draft_claim_id=draft_claim.id,
        draft_claim_line_id=draft_claim.lines[0].id,
        sent_claim_id=sent_claim.id,
        batch_id=batch.id,
        api_token_id=api_token.id,
        spare_period_id=spare.id,
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
    if endpoint == "admin.billing_edit":
        params["billing_id"] = ids.draft_id
    if endpoint.startswith("contact."):
        params["billing_id"] = ids.draft_id
        params["commitment_id"] = ids.third_commitment_id
    if endpoint.startswith("exports.api_billing"):
        params["billing_id"] = ids.billing2_id
    return params


def build_light_world() -> SimpleNamespace:
    """SPEC §4's example with a draft (Casey) and a billing under review (Olive)."""
    world = f.build_world()
    casey = db.session.get(Contact, world.contact_id)
    olive = db.session.get(Contact, world.other_contact_id)
    period = db.session.get(BillingPeriod, world.period1_id)
    draft = billings.create_billing(
        db.session.get(Commitment, world.commitment_id), period, casey
    )
    billings.save_billing(
        draft,
        casey,
        billings.BillingInput(lines={world.line_ids[0]: ("1000.00", "0")}),
        draft.version,
    )
    other = db.session.get(Commitment, world.other_commitment_id)
    review = billings.create_billing(other, period, olive)
    billings.save_billing(
        review,
        olive,
        billings.BillingInput(lines={other.sov_lines[0].id: ("5000.00", "0")}),
        review.version,
    )
    billings.submit_billing(review, olive, review.version)
    db.session.commit()
    return SimpleNamespace(**vars(world), draft_id=draft.id, review_id=review.id)
