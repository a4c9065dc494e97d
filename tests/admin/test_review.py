"""Billings through the back office: create on a contact's behalf, the G703 entry
form, the review page, decisions, stale decisions, comments, history, attachments.

The first test reproduces SPEC §4's worked example end to end through the pages.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.billing import figures
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Billing,
    BillingLine,
    BillingPeriod,
    Comment,
    OutboxMessage,
)

from ..clock import pinned_today
from .conftest import audit_actions, count, get, make_everything

#: Dates matter here: .ci/run also runs these at pinned days (tests/clock.py).
pytestmark = pytest.mark.calendar

D = Decimal


def _version(app, billing_id: int) -> int:
    return get(app, Billing, billing_id).version


def _line_ids(app, billing_id: int) -> dict[int, int]:
    """{sov_line_id: billing_line_id}."""
    with app.app_context():
        return dict(
            db.session.execute(
                sa.select(BillingLine.sov_line_id, BillingLine.id).where(
                    BillingLine.billing_id == billing_id
                )
            ).all()
        )


def create_billing(client, commitment_id: int, period_id: int) -> int:
    response = client.post(
        "/admin/billings/new",
        data={"commitment_id": commitment_id, "period_id": period_id},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    match = re.fullmatch(r"/admin/billings/(\d+)/edit", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match[1])


def enter(app, client, billing_id, amounts, action="submit", **extra):
    """Post the G703 entry form: amounts = {sov_line_id: (work, new materials
    stored[, stored materials installed])}."""
    data = {"version": _version(app, billing_id), "action": action, **extra}
    for sov_id, (work, materials, *installed) in amounts.items():
        data[f"line-{sov_id}-work"] = work
        data[f"line-{sov_id}-materials"] = materials
        if installed:
            data[f"line-{sov_id}-installed"] = installed[0]
    return client.post(f"/admin/billings/{billing_id}/edit", data=data)


def decide(app, client, billing_id, decision, lines=None, version=None, **extra):
    """Post the review form: lines = {sov_line_id: (work, materials, status, comment)}."""
    data = {
        "version": version if version is not None else _version(app, billing_id),
        "decision": decision,
        **extra,
    }
    by_sov = _line_ids(app, billing_id)
    for sov_id, (work, materials, status, comment) in (lines or {}).items():
        bl = by_sov[sov_id]
        data[f"line-{bl}-work"] = work
        data[f"line-{bl}-materials"] = materials
        data[f"line-{bl}-status"] = status
        data[f"line-{bl}-comment"] = comment
    return client.post(f"/admin/billings/{billing_id}/decide", data=data)


def g702_approved(html: str) -> dict[int, str]:
    """G702 line number → the approved column's text on the review page."""
    out = {}
    for n, cell in re.findall(
        r'<tr[^>]*data-line="(\d)"[^>]*>.*?<td class="num approved"[^>]*>(.*?)</td>',
        html,
        re.S,
    ):
        out[int(n)] = cell.strip()
    return out


def open_period_2(app, client, project_id: int, period1_id: int) -> int:
    """Close period 1 and create period 2 right after it, open, through the pages."""
    p1 = get(app, BillingPeriod, period1_id)
    assert client.post(f"/admin/periods/{period1_id}/close").status_code == 302
    start = p1.end_date + timedelta(days=1)
    response = client.post(
        "/admin/periods/new",
        data={
            "project_id": project_id,
            "start_date": start.isoformat(),
            "end_date": (start + timedelta(days=27)).isoformat(),
            # Due after its own start (the form's rule), whatever the day.
            "due_date": (start + timedelta(days=5)).isoformat(),
            "billing_date": (start + timedelta(days=27)).isoformat(),
            "open_now": "1",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        period = db.session.scalars(
            sa.select(BillingPeriod).where(
                BillingPeriod.project_id == project_id, BillingPeriod.sequence == 2
            )
        ).one()
        assert period.status == "open"
        return period.id


def test_worked_example_through_the_pages(app, client, auth, world) -> None:
    """SPEC §4: billing 1 approved as claimed; billing 2 with L3 cut to 10,000 is
    approved as noted, and the page shows the G702 figures to the cent."""
    w = world
    l1, l2, l3 = w.line_ids
    auth.login_user(w.admin_id)

    # Billing 1, entered on the contact's behalf and approved as claimed.
    b1 = create_billing(client, w.commitment_id, w.period1_id)
    form = client.get(f"/admin/billings/{b1}/edit")
    assert form.status_code == 200
    assert f'name="line-{l1}-work"' in form.get_data(as_text=True)
    response = enter(
        app, client, b1, {l1: ("20,000.00", "0"), l2: ("0", "6000"), l3: ("", "")}
    )
    assert response.status_code == 302
    assert get(app, Billing, b1).status == "under_review"
    response = decide(app, client, b1, "approve")
    assert response.status_code == 302
    assert get(app, Billing, b1).status == "approved"
    page = client.get(f"/admin/billings/{b1}").get_data(as_text=True)
    assert g702_approved(page)[6] == "$23,700.00"
    assert g702_approved(page)[8] == "$23,700.00"

    # Period 2, then billing 2.
    p2 = open_period_2(app, client, w.project_id, w.period1_id)
    b2 = create_billing(client, w.commitment_id, p2)
    response = enter(
        app,
        client,
        b2,
        # F carries: 3,500.00 of L2's 6,000.00 installed (in its 4,000.00 of
        # work), nothing new stored, leaves 2,500.00 (SPEC §4).
        {l1: ("15000", "0"), l2: ("4,000", "0", "3,500.00"), l3: ("$12,345.67", "0")},
    )
    assert response.status_code == 302
    review = client.get(f"/admin/billings/{b2}")
    assert review.status_code == 200
    assert "$12,345.67" in review.get_data(as_text=True)

    response = decide(
        app,
        client,
        b2,
        "approve",
        lines={
            l1: ("15,000.00", "0.00", "approved", ""),
            l2: ("4,000.00", "0.00", "approved", ""),
            l3: ("10,000.00", "0.00", "approved", "Switchgear delivered, not set"),
        },
    )
    assert response.status_code == 302
    assert get(app, Billing, b2).status == "approved_as_noted"

    html = client.get(f"/admin/billings/{b2}").get_data(as_text=True)
    assert g702_approved(html) == {
        1: "$100,000.00",
        2: "$5,000.00",
        3: "$105,000.00",
        4: "$51,500.00",
        5: "$5,025.00",
        6: "$46,475.00",
        7: "$23,700.00",
        8: "$22,775.00",
        9: "$58,525.00",
    }
    for text in ("$46,475.00", "$4,900.00", "$125.00", "18.57%", "70.00%", "50.00%"):
        assert text in html, text
    assert "Switchgear delivered, not set" in html
    assert "Approved as noted" in html

    # The same figures from the engine, frozen on the billing.
    with app.app_context():
        billing = db.session.get(Billing, b2)
        totals = figures.sheet(billing, "approved").totals
        assert totals.retainage == D("5025.00")
        assert totals.current_payment_due == D("22775.00")
        claimed = figures.sheet(billing, "claimed").totals
        assert claimed.total_completed_and_stored == D("53845.67")

    actions = audit_actions(app, object_type="billing", object_id=b2)
    for action in (
        "billing.create",
        "billing.save",
        "billing.submit",
        "billing.review",
        "billing.approve",
    ):
        assert action in actions
    # Mail: the admins heard of the submission, the contact of the decision.
    assert count(app, OutboxMessage, OutboxMessage.kind == "billing_approved") == 2
    assert count(app, OutboxMessage, OutboxMessage.kind == "billing_submitted") == 2


@pytest.fixture
def submitted(app, client, auth, world):
    """Billing 1 of the worked example, under review."""
    w = world
    auth.login_user(w.admin_id)
    b1 = create_billing(client, w.commitment_id, w.period1_id)
    l1, l2, _ = w.line_ids
    assert (
        enter(app, client, b1, {l1: ("20000", "0"), l2: ("0", "6000")}).status_code
        == 302
    )
    return b1


def test_stale_decision_is_refused(app, client, world, submitted) -> None:
    l1, _, _ = world.line_ids
    old = _version(app, submitted)
    # Someone else saves a review meanwhile: line 1 cut to 19,000.
    response = decide(
        app,
        client,
        submitted,
        "save",
        lines={l1: ("19,000", "0", "approved", "Retest pending")},
    )
    assert response.status_code == 302
    assert _version(app, submitted) > old
    # Our approval, made on the page loaded before that, is refused.
    response = decide(app, client, submitted, "approve", version=old)
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "changed by someone else meanwhile" in page
    assert get(app, Billing, submitted).status == "under_review"
    assert "billing.approve" not in audit_actions(
        app, object_type="billing", object_id=submitted
    )
    # Reloaded, the decision goes through and notes the difference.
    assert decide(app, client, submitted, "approve").status_code == 302
    assert get(app, Billing, submitted).status == "approved_as_noted"


def test_two_admins_deciding_at_once_exactly_one_wins(
    app, client, world, submitted
) -> None:
    loaded = _version(app, submitted)
    first = decide(app, client, submitted, "approve", version=loaded)
    assert first.status_code == 302
    second = decide(app, client, submitted, "send_back", version=loaded, comment="No")
    page = client.get(second.headers["Location"]).get_data(as_text=True)
    assert "changed by someone else meanwhile" in page
    assert get(app, Billing, submitted).status == "approved"
    actions = audit_actions(app, object_type="billing", object_id=submitted)
    assert actions.count("billing.approve") == 1
    assert "billing.send_back" not in actions


def test_send_back_mails_every_reason(app, client, world, submitted) -> None:
    l1, l2, _ = world.line_ids
    # "revise" without a reason: a field error, nothing changes.
    bad = decide(
        app, client, submitted, "send_back", lines={l1: ("20000", "0", "revise", "")}
    )
    assert bad.status_code == 400
    assert "Say what needs revising." in bad.get_data(as_text=True)
    assert get(app, Billing, submitted).status == "under_review"
    response = decide(
        app,
        client,
        submitted,
        "send_back",
        lines={
            l1: ("20000", "0", "revise", "Photos of the rough-in are missing"),
            l2: ("0", "6000", "approved", ""),
        },
        comment="Please attach the conditional lien waiver.",
    )
    assert response.status_code == 302
    assert get(app, Billing, submitted).status == "revise_and_resubmit"
    with app.app_context():
        mail = db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.kind == "revise_and_resubmit")
        ).all()
        assert [m.recipient for m in mail] == ["casey@example-electric.example"]
        assert "Photos of the rough-in are missing" in mail[0].body_text
        assert "Please attach the conditional lien waiver." in mail[0].body_text
        body = mail[0].body_text
    # Issue 14 item 4: the mail's button is its own single-use link that lands on
    # this billing, even with no session (another device, or hours later).
    link = re.search(r"Revise and resubmit: (\S+)", body).group(1)
    assert "/portal/link/" in link
    path = link.split("portal.test", 1)[1]
    phone = app.test_client()
    assert phone.get(path).status_code == 200
    landed = phone.post(path, data={"action": "continue"})
    assert landed.status_code == 302
    assert landed.headers["Location"].endswith(f"/portal/billings/{submitted}")
    assert phone.get(f"/portal/billings/{submitted}").status_code == 200
    assert phone.post(path, data={"action": "continue"}).status_code in (302, 410)
    assert app.test_client().post(path, data={"action": "continue"}).status_code == 410
    assert "billing.send_back" in audit_actions(
        app, object_type="billing", object_id=submitted
    )


def test_send_back_needs_a_reason(app, client, world, submitted) -> None:
    response = decide(app, client, submitted, "send_back")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Mark at least one line revise" in page
    assert get(app, Billing, submitted).status == "under_review"


def test_revision_history_shows_what_changed(app, client, world, submitted) -> None:
    l1, l2, _ = world.line_ids
    decide(
        app,
        client,
        submitted,
        "send_back",
        lines={l1: ("20000", "0", "revise", "Too high: 18,000 is in place")},
    )
    # Resubmitted on the contact's behalf with line 1 lowered.
    response = enter(
        app, client, submitted, {l1: ("18,000.00", "0"), l2: ("0", "6000")}
    )
    assert response.status_code == 302
    billing = get(app, Billing, submitted)
    assert (billing.status, billing.revision) == ("under_review", 1)
    html = client.get(f"/admin/billings/{submitted}").get_data(as_text=True)
    history = html[html.index('id="history"') :]
    assert "Revision 1" in history and "Revision 0" in history
    assert "$20,000.00 → <strong>$18,000.00</strong>" in history
    # The reviewer's approval of other lines stays; the changed line is pending.
    with app.app_context():
        statuses = dict(
            db.session.execute(
                sa.select(BillingLine.sov_line_id, BillingLine.status).where(
                    BillingLine.billing_id == submitted
                )
            ).all()
        )
        assert statuses[l1] == "pending"


def _history_blocks(client, billing_id: int) -> dict[int, str]:
    """Revision number → its block in the review page's revision history."""
    html = client.get(f"/admin/billings/{billing_id}").get_data(as_text=True)
    history = html[html.index('id="history"') :]
    return {
        int(m[1]): m[2]
        for m in re.finditer(
            r"Revision (\d+) (.*?)(?=Revision \d+ |</section>)", history, re.S
        )
    }


def test_revision_history_shows_installed_changes(
    app, client, world, submitted
) -> None:
    """Installing stored materials is a change of the claim like any other."""
    l1, l2, _ = world.line_ids
    for revision, l2_amounts in (
        (1, ("1000", "6000", "0")),
        (2, ("1000", "6000", "1000")),
    ):
        decide(
            app,
            client,
            submitted,
            "send_back",
            lines={l2: ("0", "6000", "revise", "Show what you installed")},
        )
        response = enter(app, client, submitted, {l1: ("20000", "0"), l2: l2_amounts})
        assert response.status_code == 302
        assert get(app, Billing, submitted).revision == revision
    blocks = _history_blocks(client, submitted)
    assert set(blocks) == {0, 1, 2}
    # Revision 2 only installed 1,000.00 of the stored fixtures: listed, and the
    # claim this period is work + new stored − installed.
    assert "Resubmitted without changes" not in blocks[2]
    assert "installed $0.00 → <strong>$1,000.00</strong>" in blocks[2]
    assert "work $" not in blocks[2] and "new stored $" not in blocks[2]
    assert "claimed $26,000.00" in blocks[2]
    assert "work $0.00 → <strong>$1,000.00</strong>" in blocks[1]
    assert "installed" not in blocks[1]
    assert "claimed $27,000.00" in blocks[1]


def test_hold_then_approve(app, client, world, submitted) -> None:
    assert decide(app, client, submitted, "hold").status_code == 302
    assert get(app, Billing, submitted).status == "pending_owner_approval"
    assert decide(app, client, submitted, "approve").status_code == 302
    assert get(app, Billing, submitted).status == "approved"


def test_void_needs_a_reason(app, client, world, submitted) -> None:
    version = _version(app, submitted)
    response = client.post(
        f"/admin/billings/{submitted}/void", data={"version": version, "reason": " "}
    )
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Give a reason for voiding." in page
    assert get(app, Billing, submitted).status == "under_review"
    client.post(
        f"/admin/billings/{submitted}/void",
        data={"version": version, "reason": "Duplicate of the paper claim"},
    )
    billing = get(app, Billing, submitted)
    assert billing.status == "void"
    assert billing.void_reason == "Duplicate of the paper claim"
    assert "billing.void" in audit_actions(
        app, object_type="billing", object_id=submitted
    )


def test_entry_form_refuses_bad_amounts_and_saves_nothing(
    app, client, auth, world
) -> None:
    w = world
    l1, l2, l3 = w.line_ids
    auth.login_user(w.admin_id)
    b1 = create_billing(client, w.commitment_id, w.period1_id)
    before = _version(app, b1)
    response = enter(
        app,
        client,
        b1,
        {l1: ("12abc", "0"), l2: ("1.234", "-5"), l3: ("NaN", "1e5")},
        action="save",
    )
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    for message in (
        "Enter an amount like 1,234.50.",
        "Use at most 2 decimal places.",
        "This amount cannot be negative.",
        "Enter an ordinary number, not NaN or Infinity.",
        "Write the amount out in full, without an exponent like 1e5.",
    ):
        assert message in text
    assert 'value="12abc"' in text  # what was typed comes back
    assert _version(app, b1) == before
    # Overbilling is refused on this project (L3 is 20,000.00).
    response = enter(app, client, b1, {l3: ("25,000", "0")}, action="save")
    assert response.status_code == 400
    assert "overbilling is" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(
            sa.select(sa.func.sum(BillingLine.claimed_work)).where(
                BillingLine.billing_id == b1
            )
        ) in (0, D("0.00"))


def test_admin_may_create_after_the_due_date(app, client, auth, world) -> None:
    w = world
    with app.app_context():
        period = db.session.get(BillingPeriod, w.period1_id)
        period.due_date = pinned_today() - timedelta(days=3)
        db.session.commit()
    auth.login_user(w.admin_id)
    billing_id = create_billing(client, w.commitment_id, w.period1_id)
    page = client.get(f"/admin/billings/{billing_id}/edit").get_data(as_text=True)
    assert "the due date has passed" in page
    l1 = w.line_ids[0]
    assert enter(app, client, billing_id, {l1: ("1000", "0")}).status_code == 302
    assert get(app, Billing, billing_id).status == "under_review"


def test_second_billing_for_the_same_period_is_refused(
    app, client, auth, world
) -> None:
    w = world
    auth.login_user(w.admin_id)
    create_billing(client, w.commitment_id, w.period1_id)
    response = client.post(
        "/admin/billings/new",
        data={"commitment_id": w.commitment_id, "period_id": w.period1_id},
    )
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "A billing already exists for this commitment and period." in page
    assert count(app, Billing) == 1


def test_comments_attachments_and_audit_page(app, client, auth, users) -> None:
    ids = make_everything(app)
    auth.login_user(ids.admin_id)
    response = client.post(
        f"/admin/billings/{ids.billing_id}/comments",
        data={"body": "Lien waiver received, thanks."},
    )
    assert response.status_code == 302
    empty = client.post(f"/admin/billings/{ids.billing_id}/comments", data={"body": ""})
    assert "Write a comment first." in client.get(empty.headers["Location"]).get_data(
        as_text=True
    )
    page = client.get(f"/admin/billings/{ids.billing_id}").get_data(as_text=True)
    assert "Lien waiver received, thanks." in page
    assert "invoice 7.pdf" in page
    # A viewer can read and download, but not comment.
    auth.login_user(users["viewer"])
    download = client.get(f"/admin/attachments/{ids.attachment_id}")
    assert download.status_code == 200
    assert download.data == ids.attachment_bytes
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert (
        client.post(
            f"/admin/billings/{ids.billing_id}/comments", data={"body": "x"}
        ).status_code
        == 403
    )
    audit = client.get(f"/admin/billings/{ids.billing_id}/audit")
    assert audit.status_code == 200
    text = audit.get_data(as_text=True)
    assert "billing.create" in text and "comment.add" in text
    assert count(app, Comment, Comment.billing_id == ids.billing_id) == 1
    assert (
        count(
            app,
            AuditEvent,
            AuditEvent.action == "comment.add",
            AuditEvent.object_id == ids.billing_id,
        )
        == 1
    )


def test_billings_list_filters(app, client, auth, world, submitted) -> None:
    page = client.get("/admin/billings?status=under_review").get_data(as_text=True)
    assert "SC-100" in page
    page = client.get("/admin/billings?status=approved").get_data(as_text=True)
    assert "No billings match." in page
    page = client.get(f"/admin/billings?vendor_id={world.vendor_id}&q=sc-1")
    assert "SC-100" in page.get_data(as_text=True)
    page = client.get("/admin/billings?q=nothing-like-this").get_data(as_text=True)
    assert "No billings match." in page
    # Odd filter values are ignored, never a 500.
    assert (
        client.get("/admin/billings?project_id=abc&page=-3&status=%00").status_code
        == 200
    )


def _billing_with_lines(app, world, n: int) -> int:
    """A submitted billing of a new commitment with ``n`` lines, a comment per line."""
    from portal.billing import billings
    from portal.models import Project, User

    from .. import factories as f

    with app.app_context():
        project = db.session.get(Project, world.project_id)
        admin = db.session.get(User, world.admin_id)
        contact = f.make_contact(f.make_vendor())
        commitment = f.make_commitment(
            project,
            contact.vendor,
            [(f"01-{i:03d}", "1000.00") for i in range(n)],
            [contact],
        )
        billing = billings.create_billing(
            commitment, db.session.get(BillingPeriod, world.period1_id), admin
        )
        billings.save_billing(
            billing,
            admin,
            billings.BillingInput(
                lines={bl.sov_line_id: ("100", "10") for bl in billing.lines}
            ),
            billing.version,
        )
        billings.submit_billing(billing, admin, billing.version)
        for bl in billing.lines:
            billings.add_comment(billing, admin, "Checked on site", bl)
        db.session.commit()
        return billing.id


def test_review_page_queries_do_not_grow_with_lines(app, client, auth, world) -> None:
    from ..helpers import counting

    small = _billing_with_lines(app, world, 3)
    large = _billing_with_lines(app, world, 40)
    auth.login_user(world.admin_id)
    counts = []
    for billing_id in (small, large):
        with counting(app) as statements:
            response = client.get(f"/admin/billings/{billing_id}")
            assert response.status_code == 200
        counts.append(len(statements))
    assert counts[0] == counts[1]
    assert "$4,400.00" in response.get_data(as_text=True)  # 40 × 110.00
