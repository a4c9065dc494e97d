"""The billing page: save, submit, every bad input of SPEC §5, review, figures."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.core.statuses import (
    BillingStatus,
    ChangeOrderStatus,
    LineStatus,
    PeriodStatus,
)
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Billing,
    BillingPeriod,
    ChangeOrder,
    ChangeOrderItem,
    Comment,
    Commitment,
    OutboxMessage,
    Project,
    RevisionSnapshot,
    SovLine,
)
from portal.timeutil import utcnow

from .. import factories as f
from ..clock import pinned_today
from .conftest import (
    approve,
    count,
    form_for,
    review,
    text_of,
    version_of,
)

#: Dates matter here: .ci/run also runs these at pinned days (tests/clock.py).
pytestmark = pytest.mark.calendar

D = Decimal


@pytest.fixture
def draft(app, client, auth, w, make_billing):
    """A new draft of world billing 1, with the contact signed in."""
    billing_id = make_billing(w)
    auth.login_contact(w.contact_id)
    return billing_id


def _amounts(app, billing_id: int) -> dict[int, tuple[D, D]]:
    with app.app_context():
        billing = db.session.get(Billing, billing_id)
        out = {
            bl.sov_line_id: (bl.claimed_work, bl.claimed_materials)
            for bl in billing.lines
        }
        db.session.remove()
    return out


def _state(app, billing_id: int) -> tuple:
    with app.app_context():
        b = db.session.get(Billing, billing_id)
        state = (
            b.status,
            b.version,
            b.vendor_invoice_number,
            b.notes,
            b.retainage_released,
            tuple(
                sorted(
                    (
                        bl.sov_line_id,
                        bl.claimed_work,
                        bl.claimed_materials,
                        bl.approved_work,
                        bl.approved_materials,
                        bl.status,
                    )
                    for bl in b.lines
                )
            ),
        )
        db.session.remove()
    return state


def _post(client, billing_id: int, data: dict):
    return client.post(f"/portal/billings/{billing_id}", data=data)


# ------------------------------------------------------------------ save & submit


def test_save_draft_keeps_everything(app, client, w, draft, app_ctx):
    v = version_of(app, draft)
    response = _post(
        client,
        draft,
        form_for(
            w,
            v,
            "save",
            l1w="$20,000",
            l2m="6,000.00",
            vendor_invoice_number=" INV-77 ",
            notes="First bill",
        ),
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).text
    assert "Draft saved" in page
    l1, l2, l3 = w.line_ids
    assert _amounts(app, draft) == {
        l1: (D("20000.00"), D("0.00")),
        l2: (D("0.00"), D("6000.00")),
        l3: (D("0.00"), D("0.00")),
    }
    with app_ctx():
        b = db.session.get(Billing, draft)
        assert b.status == BillingStatus.DRAFT
        assert b.version == v + 1
        assert (b.vendor_invoice_number, b.notes) == ("INV-77", "First bill")
        assert count(AuditEvent, AuditEvent.action == "billing.save") == 1
        assert count(OutboxMessage) == 0
    # The page shows the saved amounts and the server's figures.
    assert f'name="line-{l1}-work" value="20,000.00"' in page
    assert "$26,000.00" in page  # G702 line 4
    assert "$23,700.00" in page  # line 8 (retainage 2,000 + 300)


def test_submit_locks_notifies_and_snapshots(app, client, w, draft, app_ctx):
    with app_ctx():
        f.make_user("admin", email="second-admin@example.com")
        f.make_user("finance")
        db.session.commit()
    response = _post(
        client,
        draft,
        form_for(w, version_of(app, draft), "submit", l1w="20000", l2m="6000"),
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).text
    assert "submitted. The billing team has been notified" in page
    assert "Under review" in page
    assert 'name="line-' not in page  # locked: no inputs
    with app_ctx():
        b = db.session.get(Billing, draft)
        assert b.status == BillingStatus.UNDER_REVIEW
        assert b.revision == 0 and b.submitted_at is not None
        snap = db.session.scalars(sa.select(RevisionSnapshot)).one()
        assert snap.revision == 0
        assert snap.data["lines"][str(w.line_ids[0])]["work"] == "20000.00"
        mails = db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.kind == "billing_submitted")
        ).all()
        assert len(mails) == 2  # both admins, not finance
        assert count(AuditEvent, AuditEvent.action == "billing.submit") == 1
    # Edits to a submitted billing are refused; nothing changes.
    before = _state(app, draft)
    response = _post(client, draft, form_for(w, before[1], "save", l1w="1"))
    assert response.status_code == 302
    assert "cannot be edited" in client.get(f"/portal/billings/{draft}").text
    assert _state(app, draft) == before


def test_double_submit_only_one_wins(app, client, w, draft, app_ctx):
    data = form_for(w, version_of(app, draft), "submit", l1w="20000")
    assert _post(client, draft, data).status_code == 302
    assert _post(client, draft, data).status_code == 302
    with app_ctx():
        assert count(RevisionSnapshot) == 1
        assert count(AuditEvent, AuditEvent.action == "billing.submit") == 1


def test_submit_with_nothing_entered_saves_nothing(app, client, w, draft):
    before = _state(app, draft)
    response = _post(
        client, draft, form_for(w, before[1], "submit", vendor_invoice_number="INV-1")
    )
    assert response.status_code == 422
    assert "Enter at least one amount before submitting." in response.text
    assert 'value="INV-1"' in response.text  # typed values kept
    assert _state(app, draft) == before


def test_late_submission_is_refused_and_nothing_saved(app, client, w, draft, app_ctx):
    with app_ctx():
        db.session.get(BillingPeriod, w.period1_id).due_date = (
            pinned_today() - timedelta(days=1)
        )
        db.session.commit()
    before = _state(app, draft)
    page = client.get(f"/portal/billings/{draft}").text
    assert "The due date of this period has passed" in page
    response = _post(client, draft, form_for(w, before[1], "submit", l1w="20000"))
    assert response.status_code == 422
    assert "can no longer be submitted here" in response.text
    assert 'value="20000"' in response.text
    assert _state(app, draft) == before
    # Saving the draft still works.
    assert (
        _post(client, draft, form_for(w, before[1], "save", l1w="20000")).status_code
        == 302
    )
    assert _amounts(app, draft)[w.line_ids[0]] == (D("20000.00"), D("0.00"))


def test_late_submission_allowed_by_the_project(app, client, w, draft, app_ctx):
    with app_ctx():
        db.session.get(BillingPeriod, w.period1_id).due_date = (
            pinned_today() - timedelta(days=1)
        )
        db.session.get(Project, w.project_id).late_submissions_allowed = True
        db.session.commit()
    response = _post(
        client, draft, form_for(w, version_of(app, draft), "submit", l1w="1")
    )
    assert response.status_code == 302
    assert _state(app, draft)[0] == BillingStatus.UNDER_REVIEW


def test_stale_version_is_refused(app, client, w, draft):
    v = version_of(app, draft)
    assert _post(client, draft, form_for(w, v, "save", l1w="100")).status_code == 302
    before = _state(app, draft)
    response = _post(client, draft, form_for(w, v, "save", l1w="999"))
    assert response.status_code == 302
    assert (
        "changed by someone else meanwhile"
        in client.get(f"/portal/billings/{draft}").text
    )
    assert _state(app, draft) == before
    for bad in ("", "abc", "-1", "99999999999999999999"):
        data = form_for(w, v, "save", l1w="5")
        data["version"] = bad
        _post(client, draft, data)
    assert _state(app, draft) == before


# ------------------------------------------------------------------ bad input (SPEC §5)


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("l1w", "abc", "Enter an amount like 1,234.50."),
        ("l1w", "12.345", "Use at most 2 decimal places."),
        ("l1w", "NaN", "Enter an ordinary number, not NaN or Infinity."),
        ("l1w", "sNaN", "Enter an ordinary number, not NaN or Infinity."),
        ("l1w", "Infinity", "Enter an ordinary number, not NaN or Infinity."),
        ("l1w", "1e5", "Write the amount out in full, without an exponent like 1e5."),
        ("l1w", "1e309", "Write the amount out in full, without an exponent like 1e5."),
        ("l1w", "1,000,000,000,000.00", "Amounts are limited to 999,999,999,999.99."),
        ("l1w", "١٢٣", "Use only the digits 0-9"),
        ("l1w", "１２３", "Use only the digits 0-9"),
        ("l2m", "-5", "This amount cannot be negative."),
        ("l1w", "-1", "Work to date cannot go below zero"),
        ("l1w", "50,000.01", "overbilling is"),
        ("l2w", "35,000.01", "overbilling is"),
    ],
)
def test_bad_amounts_get_a_message_beside_the_field_and_save_nothing(
    app, client, w, draft, field, text, message
):
    before = _state(app, draft)
    data = form_for(w, before[1], "save", l3w="100", **{field: text})
    response = _post(client, draft, data)
    assert response.status_code == 422
    n = int(field[1])
    kind = "work" if field.endswith("w") else "materials"
    name = f"line-{w.line_ids[n - 1]}-{kind}"
    error = re.search(rf'id="{name}-error">([^<]*)<', response.text)
    assert error is not None and message in error.group(1)
    assert f'aria-invalid="true" aria-describedby="{name}-error"' in response.text
    # The typed values are kept, the good one too.
    assert f'value="{text}"' in response.text.replace("&#34;", '"')
    assert f'name="line-{w.line_ids[2]}-work" value="100"' in response.text
    assert _state(app, draft) == before


def test_overbilling_allowed_by_the_project_is_saved_and_flagged(
    app, client, w, draft, app_ctx
):
    with app_ctx():
        db.session.get(Project, w.project_id).overbilling_allowed = True
        db.session.commit()
    response = _post(
        client, draft, form_for(w, version_of(app, draft), "save", l3w="25,000")
    )
    assert response.status_code == 302
    page = client.get(f"/portal/billings/{draft}").text
    assert "bill more than their scheduled value" in page
    assert _amounts(app, draft)[w.line_ids[2]] == (D("25000.00"), D("0.00"))


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"vendor_invoice_number": "X" * 61}, "vendor_invoice_number", "at most 60"),
        ({"notes": "n" * 4001}, "notes", "at most 4000"),
    ],
)
def test_over_long_text_is_refused(app, client, w, draft, extra, field, message):
    before = _state(app, draft)
    response = _post(client, draft, form_for(w, before[1], "save", l1w="10", **extra))
    assert response.status_code == 422
    error = re.search(rf'id="{field}-error">([^<]*)<', response.text)
    assert error is not None and message in error.group(1)
    assert _state(app, draft) == before


def test_retainage_release_only_where_the_project_allows(
    app, client, w, draft, app_ctx
):
    page = client.get(f"/portal/billings/{draft}").text
    assert 'name="retainage_released"' not in page
    _post(
        client,
        draft,
        form_for(
            w, version_of(app, draft), "save", l1w="20000", retainage_released="500"
        ),
    )
    assert _state(app, draft)[4] == D("0.00")  # ignored
    with app_ctx():
        db.session.get(Project, w.project_id).retainage_release_allowed = True
        db.session.commit()
    assert 'name="retainage_released"' in client.get(f"/portal/billings/{draft}").text
    before = _state(app, draft)
    response = _post(
        client,
        draft,
        form_for(w, before[1], "save", l1w="20000", retainage_released="2,500"),
    )
    assert response.status_code == 422
    assert "You cannot release more retainage than is held" in response.text
    assert _state(app, draft) == before
    response = _post(
        client,
        draft,
        form_for(w, before[1], "save", l1w="20000", retainage_released="500"),
    )
    assert response.status_code == 302
    assert _state(app, draft)[4] == D("500.00")
    page = text_of(client.get(f"/portal/billings/{draft}").text)
    # 2,000 held on work less 500 released.
    assert "5a Retainage on completed work $2,000.00" in page
    assert "5c Less retainage released to date $500.00" in page
    assert "5 Total retainage (5a + 5b − 5c) $1,500.00" in page
    assert "6 Total earned less retainage (4 − 5) $18,500.00" in page


def test_mass_assigned_fields_are_ignored(app, client, w, draft, app_ctx):
    with app_ctx():
        other_line = db.session.scalars(
            sa.select(SovLine).where(SovLine.commitment_id == w.other_commitment_id)
        ).one()
        other_line_id = other_line.id
    data = form_for(w, version_of(app, draft), "save", l1w="100")
    data.update(
        {
            "status": "approved",
            "commitment_id": str(w.other_commitment_id),
            "period_id": "999",
            "revision": "7",
            "application_number": "42",
            f"line-{w.line_ids[0]}-approved_work": "999999",
            f"line-{w.line_ids[0]}-status": "approved",
            f"line-{other_line_id}-work": "5000",
            "created_by_contact_id": str(w.other_contact_id),
            "approved_figures": "{}",
        }
    )
    assert _post(client, draft, data).status_code == 302
    with app_ctx():
        b = db.session.get(Billing, draft)
        assert b.status == BillingStatus.DRAFT
        assert b.commitment_id == w.commitment_id
        assert b.period_id == w.period1_id
        assert (b.revision, b.application_number) == (0, 1)
        assert b.created_by_contact_id == w.contact_id
        assert b.approved_figures is None
        l1 = next(bl for bl in b.lines if bl.sov_line_id == w.line_ids[0])
        assert (l1.claimed_work, l1.approved_work, l1.status) == (
            D("100.00"),
            D("100.00"),
            LineStatus.PENDING,
        )
        assert count(Billing, Billing.commitment_id == w.other_commitment_id) == 0


def test_unknown_action_changes_nothing(app, client, w, draft):
    before = _state(app, draft)
    response = _post(client, draft, form_for(w, before[1], "approve", l1w="100"))
    assert response.status_code == 302
    assert _state(app, draft) == before


def test_a_line_added_by_a_change_order_can_be_billed(app, client, w, draft, app_ctx):
    with app_ctx():
        commitment = db.session.get(Commitment, w.commitment_id)
        co = ChangeOrder(
            commitment=commitment,
            number="CO-EXTRA",
            title="Extra panel",
            status=ChangeOrderStatus.APPROVED,
            approved_at=utcnow(),
        )
        line = SovLine(
            commitment=commitment,
            line_number=4,
            cost_code="26-400",
            description="Extra panel",
            original_value=D("0.00"),
        )
        db.session.add_all([co, line])
        db.session.flush()
        line.change_order_id = co.id
        co.items.append(ChangeOrderItem(sov_line=line, amount=D("1000.00")))
        db.session.commit()
        new_id = line.id
    page = client.get(f"/portal/billings/{draft}").text
    assert f'name="line-{new_id}-work"' in page
    data = form_for(w, version_of(app, draft), "save", l1w="10")
    data[f"line-{new_id}-work"] = "400"
    response = _post(client, draft, data)
    assert response.status_code == 302
    assert _amounts(app, draft)[new_id] == (D("400.00"), D("0.00"))


# ------------------------------------------------------------------ comments


def test_comments_in_order_on_billing_and_line(app, client, w, draft, app_ctx):
    with app_ctx():
        line_id = next(
            bl.id
            for bl in db.session.get(Billing, draft).lines
            if bl.sov_line_id == w.line_ids[1]
        )
    assert (
        client.post(
            f"/portal/billings/{draft}/comments", data={"body": "First"}
        ).status_code
        == 302
    )
    client.post(
        f"/portal/billings/{draft}/comments",
        data={"body": "About fixtures", "line_id": str(line_id)},
    )
    page = client.get(f"/portal/billings/{draft}").text
    assert page.index("First") < page.index("About fixtures")
    assert "on line 2" in page
    with app_ctx():
        comments = db.session.scalars(sa.select(Comment).order_by(Comment.id)).all()
        assert [(c.body, c.billing_line_id, c.author_contact_id) for c in comments] == [
            ("First", None, w.contact_id),
            ("About fixtures", line_id, w.contact_id),
        ]
    response = client.post(f"/portal/billings/{draft}/comments", data={"body": "   "})
    assert response.status_code == 422
    assert "Write a comment first." in response.text
    with app_ctx():
        assert count(Comment) == 2


def test_comment_on_a_line_of_another_billing_is_404(
    app, client, auth, w, draft, make_billing, app_ctx
):
    with app_ctx():
        period = db.session.get(BillingPeriod, w.period1_id)
        other = db.session.get(Commitment, w.other_commitment_id)
        from portal.billing import billings as wf
        from portal.models import Contact

        ob = wf.create_billing(
            other, period, db.session.get(Contact, w.other_contact_id)
        )
        db.session.commit()
        foreign_line = ob.lines[0].id
    response = client.post(
        f"/portal/billings/{draft}/comments",
        data={"body": "sneaky", "line_id": str(foreign_line)},
    )
    assert response.status_code == 404
    with app_ctx():
        assert count(Comment) == 0


# ------------------------------------------------------------------ review, figures


def _approve_billing_one(app, client, w, billing_id: int) -> None:
    _post(
        client,
        billing_id,
        form_for(
            w, version_of(app, billing_id), "submit", l1w="20,000.00", l2m="6,000.00"
        ),
    )
    review(app, billing_id, w.admin_id, {})
    assert approve(app, billing_id, w.admin_id) == BillingStatus.APPROVED


def test_worked_example_figures_on_the_page(app, client, w, draft, app_ctx):
    _approve_billing_one(app, client, w, draft)
    page = text_of(client.get(f"/portal/billings/{draft}").text)
    assert "Approved" in page
    assert "4 Total completed and stored to date $26,000.00 $26,000.00" in page
    assert "5a Retainage on completed work $2,000.00 $2,000.00" in page
    assert "5b Retainage on stored materials $300.00 $300.00" in page
    assert "5 Total retainage (5a + 5b − 5c) $2,300.00 $2,300.00" in page
    assert "8 Current payment due (6 − 7) $23,700.00 $23,700.00" in page
    assert "Current payment due: $23,700.00" in page
    # Billing 2 in the next period, approved as noted.
    with app_ctx():
        db.session.get(BillingPeriod, w.period1_id).status = PeriodStatus.CLOSED
        db.session.flush()
        period1 = db.session.get(BillingPeriod, w.period1_id)
        period2 = f.make_period(
            db.session.get(Project, w.project_id),
            2,
            start=period1.end_date + timedelta(days=1),
            due=period1.due_date + timedelta(days=28),
        )
        db.session.commit()
        assert period2.id
    response = client.post(f"/portal/commitments/{w.commitment_id}/billings")
    b2 = int(response.headers["Location"].rsplit("/", 1)[1])
    _post(
        client,
        b2,
        form_for(
            w,
            version_of(app, b2),
            "submit",
            l1w="15,000",
            l2w="4,000",
            # F carries (SPEC §4): 3,500.00 of the 6,000.00 stored in billing 1
            # is installed (part of the 4,000.00 work), leaving 2,500.00.
            l2i="3,500",
            l3w="12,345.67",
        ),
    )
    review(
        app,
        b2,
        w.admin_id,
        {
            w.line_ids[2]: (
                "approved",
                "10,000.00",
                "0",
                "Only the main switchgear was set.",
            ),
        },
    )
    assert approve(app, b2, w.admin_id) == BillingStatus.APPROVED_AS_NOTED
    page = text_of(client.get(f"/portal/billings/{b2}").text)
    assert "Approved as noted" in page
    assert "Only the main switchgear was set." in page
    # G703 (approved): L1 D 20,000 E 15,000 G 35,000 70.00 % H 15,000 I 3,500.
    # Columns: C D E (claimed, approved), F before, new, installed, F, approved F.
    assert (
        "$50,000.00 $20,000.00 $15,000.00 $15,000.00 $0.00 $0.00 $0.00 $0.00 $0.00 $35,000.00 70.00% $15,000.00 $3,500.00"
        in page
    )
    assert (
        "$35,000.00 $0.00 $4,000.00 $4,000.00 $6,000.00 $0.00 $3,500.00 $2,500.00 $2,500.00 $6,500.00 18.57% $28,500.00 $525.00"
        in page
    )
    assert (
        "$20,000.00 $0.00 $12,345.67 $10,000.00 $0.00 $0.00 $0.00 $0.00 $0.00 $10,000.00 50.00% $10,000.00 $1,000.00"
        in page
    )
    # G702 approved column: 1..9 of SPEC §4.
    for line in (
        "1 Original contract sum $100,000.00 $100,000.00",
        "2 Net change by change orders $5,000.00 $5,000.00",
        "3 Contract sum to date (1 + 2) $105,000.00 $105,000.00",
        "$51,500.00",
        "$5,025.00",
        "$46,475.00",
        "7 Less previous certificates for payment $23,700.00 $23,700.00",
        "$22,775.00",
        "$58,525.00",
        "5a Retainage on completed work $5,134.57 $4,900.00 -$234.57",
        "5b Retainage on stored materials $125.00 $125.00",
    ):
        assert line in page
    home = text_of(client.get("/portal/").text)
    assert "$22,775.00" in home and "$23,700.00" in home  # payment due per billing


def test_a_refused_amount_on_a_billing_no_longer_editable_says_so(
    app, client, w, draft
):
    # Submitted in another tab: the old page's bad amount is not the news, the
    # billing's status is (as when its amounts were fine).
    v = version_of(app, draft)
    assert _post(client, draft, form_for(w, v, "submit", l1w="100")).status_code == 302
    before = _state(app, draft)
    response = _post(client, draft, form_for(w, v, "save", l1w="abc"))
    assert response.status_code == 302
    assert "cannot be edited" in client.get(f"/portal/billings/{draft}").text
    assert _state(app, draft) == before


def test_a_refused_retainage_release_is_kept_beside_its_field(
    app, client, w, draft, app_ctx
):
    with app_ctx():
        db.session.get(Project, w.project_id).retainage_release_allowed = True
        db.session.commit()
    before = _state(app, draft)
    response = _post(
        client,
        draft,
        form_for(w, before[1], "save", l1w="20000", retainage_released="12.345"),
    )
    assert response.status_code == 422
    error = re.search(r'id="retainage_released-error">([^<]*)<', response.text)
    assert error is not None and "Use at most 2 decimal places." in error.group(1)
    assert 'value="12.345"' in response.text
    assert f'name="line-{w.line_ids[0]}-work" value="20000"' in response.text
    assert _state(app, draft) == before


def test_a_contact_downloads_the_pdf_of_their_billing(
    app, client, auth, w, make_billing
) -> None:
    """Issue 14 item 5 (SPEC §9): as claimed while it is open; once decided,
    with the payment schedule (approved amounts and the reasons)."""
    import io

    from pypdf import PdfReader

    from portal.billing import billings

    def pdf_text(response) -> str:
        assert response.status_code == 200
        assert response.mimetype == "application/pdf"
        assert response.headers["Cache-Control"] == "no-store"
        reader = PdfReader(io.BytesIO(response.data))
        return " ".join(page.extract_text() for page in reader.pages)

    billing_id = make_billing(
        w, lines={w.line_ids[0]: ("20000.00", ""), w.line_ids[1]: ("5000.00", "")}
    )
    auth.login_contact(w.contact_id)
    page = client.get(f"/portal/billings/{billing_id}").text
    assert f'href="/portal/billings/{billing_id}/pdf"' in page
    assert "PDF as claimed" in page
    draft = pdf_text(client.get(f"/portal/billings/{billing_id}/pdf"))
    assert "not yet approved" in draft and "20,000.00" in draft
    with app.app_context():
        billing = db.session.get(Billing, billing_id)
        billings.submit_billing(
            billing, billing.commitment.contacts[0], billing.version
        )
        db.session.commit()
        db.session.remove()
    review(
        app,
        billing_id,
        w.admin_id,
        {w.line_ids[0]: ("approved", "18000.00", "0", "Level 2 is 90% done")},
    )
    approve(app, billing_id, w.admin_id)
    page = client.get(f"/portal/billings/{billing_id}").text
    assert "PDF with the payment schedule" in page
    decided = pdf_text(client.get(f"/portal/billings/{billing_id}/pdf"))
    assert "not yet approved" not in decided
    assert "18,000.00" in decided and "Level 2 is 90% done" in decided
    # Signed out: the sign-in page, not the file.
    client.delete_cookie("session")
    assert client.get(f"/portal/billings/{billing_id}/pdf").status_code == 401
