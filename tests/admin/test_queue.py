"""The review queue and bulk decisions (issue 15 items 1 and 3; docs/review-queue.md)."""

from __future__ import annotations

import re
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from portal.billing import billings as wf
from portal.core.statuses import BillingStatus, LineStatus
from portal.extensions import db
from portal.models import AuditEvent, Billing, Comment, OutboxMessage, User

from .. import factories as f
from ..helpers import bill, make_staff
from .conftest import get

pytestmark = pytest.mark.calendar


def _build(today):
    """Two projects; six billings, five waiting for a decision.

    b5 (project B, due in 2 days) comes first; then project A's (due in 5 days)
    b1, b2 (an approved amount differs), b3 (a line marked revise), b4 (held
    for the owner). b6 is a draft, not in the queue. b5 carries both an invoice
    and a lien waiver; the others have none.
    """
    from datetime import timedelta

    staff = make_staff()
    admin = db.session.get(User, staff["admin"])
    pa = f.make_project(number="PA", name="Alpha")
    pb = f.make_project(number="PB", name="Beta")
    a1 = f.make_period(pa, 1, start=today.replace(day=1), due=today + timedelta(days=5))
    b1p = f.make_period(
        pb, 1, start=today.replace(day=1), due=today + timedelta(days=2)
    )
    shared = f.make_vendor(name="Shared Vendor")
    lines = [("01-100", "10000.00"), ("01-200", "5000.00")]

    def commitment(project, vendor=None):
        vendor = vendor or f.make_vendor()
        contact = f.make_contact(vendor)
        return f.make_commitment(project, vendor, lines, [contact])

    c = [commitment(pa, shared), commitment(pa), commitment(pa), commitment(pa)]
    c += [commitment(pb, shared), commitment(pb)]
    claimed = {1: ("1000.00", "0.00"), 2: ("500.00", "0.00")}
    b1 = bill(c[0], a1, admin, claimed, decide="review")
    b2 = bill(c[1], a1, admin, claimed, decide="review")
    line = b2.lines[0]
    wf.review_lines(
        b2,
        admin,
        {line.id: wf.LineReview("900.00", "0.00", LineStatus.APPROVED, "Measured")},
        b2.version,
    )
    b3 = bill(c[2], a1, admin, claimed, decide="review")
    line = b3.lines[0]
    wf.review_lines(
        b3,
        admin,
        {line.id: wf.LineReview("1000.00", "0.00", LineStatus.REVISE, "Photos")},
        b3.version,
    )
    b4 = bill(c[3], a1, admin, claimed, decide="hold")
    b5 = bill(c[4], b1p, admin, claimed, decide="review")
    f.make_attachment(b5.id, b"%PDF-1.4 i\n", "q" * 32 + ".pdf", user=admin)
    waiver = f.make_attachment(b5.id, b"%PDF-1.4 w\n", "w" * 32 + ".pdf", user=admin)
    waiver.kind = "lien_waiver"
    b6 = bill(c[5], b1p, admin, claimed, decide="draft")
    db.session.commit()
    return SimpleNamespace(
        staff=staff,
        pa=pa.id,
        pb=pb.id,
        a1=a1.id,
        b1p=b1p.id,
        shared=shared.id,
        b=[None, b1.id, b2.id, b3.id, b4.id, b5.id, b6.id],
    )


@pytest.fixture
def q(app, today):
    with app.app_context():
        out = _build(today)
        db.session.remove()
    return out


@pytest.fixture
def admin(q, auth):
    auth.login_user(q.staff["admin"])


def _order(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'id="queue-row-(\d+)"', html)]


def test_queue_lists_waiting_billings_by_due_date(client, q, admin):
    response = client.get("/admin/queue")
    assert response.status_code == 200
    b = q.b
    assert _order(response.text) == [b[5], b[1], b[2], b[3], b[4]]
    assert "5 billing(s) waiting" in response.text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("project_id={pa}", [1, 2, 3, 4]),
        ("period_id={b1p}", [5]),
        ("vendor_id={shared}", [5, 1]),
        ("status=pending_owner_approval", [4]),
        ("status=under_review", [5, 1, 2, 3]),
        ("differences=1", [2]),
        ("missing=any", [1, 2, 3, 4]),
        ("missing=lien_waiver&project_id={pb}", []),
        ("status=bogus", [5, 1, 2, 3, 4]),
    ],
)
def test_queue_filters_live_in_the_url(client, q, admin, args, expected):
    query = args.format(pa=q.pa, b1p=q.b1p, shared=q.shared, pb=q.pb)
    response = client.get(f"/admin/queue?{query}")
    assert response.status_code == 200
    assert _order(response.text) == [q.b[n] for n in expected]


def test_queue_is_paginated(app, client, q, admin):
    app.config["PAGE_SIZE"] = 2
    first = client.get("/admin/queue?project_id=" + str(q.pa))
    second = client.get(f"/admin/queue?project_id={q.pa}&page=2")
    assert _order(first.text) == [q.b[1], q.b[2]]
    assert _order(second.text) == [q.b[3], q.b[4]]
    assert f"project_id={q.pa}" in first.text.split('aria-label="Pages"')[1]


def test_queue_flags_and_links_from_nav_and_home(client, q, admin):
    html = client.get("/admin/queue").text
    row2 = html.split(f'id="queue-row-{q.b[2]}"')[1].split("</tr>")[0]
    assert "flag-differences" in row2
    row3 = html.split(f'id="queue-row-{q.b[3]}"')[1].split("</tr>")[0]
    assert "flag-revise" in row3
    row5 = html.split(f'id="queue-row-{q.b[5]}"')[1].split("</tr>")[0]
    assert "flag-missing" not in row5
    home = client.get("/admin/").text
    assert 'href="/admin/queue"' in home
    assert 'id="attention-queue-count">5<' in home


def _position(html: str) -> str:
    match = re.search(r'id="queue-position">([^<]*)<', html)
    return match[1].strip() if match else ""


def test_review_page_shows_n_of_m_with_previous_and_next(client, q, admin):
    qs = f"project_id%3D{q.pa}"
    html = client.get(f"/admin/billings/{q.b[2]}?queue={qs}").text
    assert _position(html) == "2 of 4"
    assert f'href="/admin/billings/{q.b[1]}?queue=project_id%3D{q.pa}"' in html
    assert f'href="/admin/billings/{q.b[3]}?queue=project_id%3D{q.pa}"' in html
    assert 'name="queue" value="project_id=' in html
    plain = client.get(f"/admin/billings/{q.b[2]}").text
    assert 'id="queue-nav"' not in plain


def test_decision_from_the_queue_lands_on_the_next_billing(app, client, q, admin):
    version = get(app, Billing, q.b[1]).version
    response = client.post(
        f"/admin/billings/{q.b[1]}/decide",
        data={"version": version, "decision": "approve", "queue": f"project_id={q.pa}"},
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == f"/admin/billings/{q.b[2]}"
    assert parse_qs(location.query)["queue"] == [f"project_id={q.pa}"]
    assert get(app, Billing, q.b[1]).status == BillingStatus.APPROVED
    html = client.get(response.headers["Location"]).text
    assert _position(html) == "1 of 3"


def test_decision_on_the_last_billing_goes_back_to_the_queue(app, client, q, admin):
    version = get(app, Billing, q.b[5]).version
    response = client.post(
        f"/admin/billings/{q.b[5]}/decide",
        data={"version": version, "decision": "approve", "queue": f"period_id={q.b1p}"},
    )
    assert response.headers["Location"] == f"/admin/queue?period_id={q.b1p}"


def test_decision_without_the_queue_stays_on_the_billing(app, client, q, admin):
    version = get(app, Billing, q.b[1]).version
    response = client.post(
        f"/admin/billings/{q.b[1]}/decide",
        data={"version": version, "decision": "approve"},
    )
    assert response.headers["Location"] == f"/admin/billings/{q.b[1]}"


# ------------------------------------------------------------------- bulk


def _pairs(app, *ids):
    return [f"{i}:{get(app, Billing, i).version}" for i in ids]


def _events(app, action):
    with app.app_context():
        return list(
            db.session.scalars(
                sa.select(AuditEvent.object_id)
                .where(AuditEvent.action == action)
                .order_by(AuditEvent.object_id)
            )
        )


def _flashes(client) -> list[str]:
    with client.session_transaction() as sess:
        return [m for _, m in sess.pop("_flashes", [])]


def test_bulk_approve_skips_changed_and_undecidable_billings(app, client, q, admin):
    b = q.b
    pairs = _pairs(app, b[1], b[2], b[3], b[4], b[5])
    # b5 changes after the page was shown (another reviewer saved it).
    with app.app_context():
        billing = db.session.get(Billing, b[5])
        line = billing.lines[0]
        wf.review_lines(
            billing,
            db.session.get(User, q.staff["admin"]),
            {line.id: wf.LineReview("1000.00", "0.00", LineStatus.APPROVED)},
            billing.version,
        )
        db.session.commit()
    mails_before = _count(app, OutboxMessage)
    response = client.post(
        "/admin/billings/bulk",
        data={"action": "approve", "billing": pairs, "back": "/admin/queue"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/queue"
    messages = _flashes(client)
    assert messages[0] == "2 approved, 3 skipped."
    assert any("changed since the page was loaded" in m for m in messages)
    assert any("marked revise" in m for m in messages)
    assert any("differs from the claim" in m for m in messages)
    statuses = {i: get(app, Billing, i).status for i in b[1:6]}
    assert statuses == {
        b[1]: BillingStatus.APPROVED,
        b[2]: BillingStatus.UNDER_REVIEW,
        b[3]: BillingStatus.UNDER_REVIEW,
        b[4]: BillingStatus.APPROVED,
        b[5]: BillingStatus.UNDER_REVIEW,
    }
    # One audit event per approved billing, and the single decision's mails.
    assert _events(app, "billing.approve") == sorted([b[1], b[4]])
    assert _count(app, OutboxMessage) == mails_before + 2
    # Nothing half-done on the skipped ones: lines untouched, not decided.
    for i in (b[2], b[3], b[5]):
        billing = get(app, Billing, i)
        assert billing.decided_at is None and billing.approved_figures is None


def test_bulk_approve_stale_inside_the_transition(app, client, q, admin, monkeypatch):
    """A version bumped between the check and the compare-and-set: the CAS
    refuses it, its savepoint is rolled back, the others are approved."""
    b = q.b
    pairs = _pairs(app, b[1], b[4])
    real = wf.approve_billing

    def racing(billing, user, version):
        if billing.id == b[1]:
            db.session.execute(
                sa.update(Billing)
                .where(Billing.id == b[1])
                .values(version=Billing.version + 1)
            )
        return real(billing, user, version)

    monkeypatch.setattr(wf, "approve_billing", racing)
    client.post("/admin/billings/bulk", data={"action": "approve", "billing": pairs})
    assert _flashes(client)[0] == "1 approved, 1 skipped."
    first = get(app, Billing, b[1])
    assert first.status == BillingStatus.UNDER_REVIEW
    assert first.decided_at is None
    assert [bl.status for bl in _lines(app, b[1])] == [LineStatus.PENDING] * 2
    assert get(app, Billing, b[4]).status == BillingStatus.APPROVED
    assert _events(app, "billing.approve") == [b[4]]


def test_bulk_approve_twice_decides_once(app, client, q, admin):
    pairs = _pairs(app, q.b[1], q.b[5])
    client.post("/admin/billings/bulk", data={"action": "approve", "billing": pairs})
    assert _flashes(client)[0] == "2 approved, 0 skipped."
    client.post("/admin/billings/bulk", data={"action": "approve", "billing": pairs})
    assert _flashes(client)[0] == "0 approved, 2 skipped."
    assert _events(app, "billing.approve") == sorted([q.b[1], q.b[5]])


def test_bulk_send_back_needs_a_comment(app, client, q, admin):
    pairs = _pairs(app, q.b[1], q.b[5], q.b[4])
    client.post(
        "/admin/billings/bulk",
        data={"action": "send_back", "billing": pairs, "comment": "  "},
    )
    assert "Write the comment" in _flashes(client)[0]
    assert get(app, Billing, q.b[1]).status == BillingStatus.UNDER_REVIEW
    mails = _count(app, OutboxMessage)
    client.post(
        "/admin/billings/bulk",
        data={"action": "send_back", "billing": pairs, "comment": "Add the waiver"},
    )
    messages = _flashes(client)
    assert messages[0] == "2 sent back, 1 skipped."
    assert "only a billing under review can be sent back" in messages[1]
    for i in (q.b[1], q.b[5]):
        assert get(app, Billing, i).status == BillingStatus.REVISE_AND_RESUBMIT
    assert get(app, Billing, q.b[4]).status == BillingStatus.PENDING_OWNER_APPROVAL
    assert _events(app, "billing.send_back") == sorted([q.b[1], q.b[5]])
    assert _count(app, Comment, Comment.body == "Add the waiver") == 2
    assert _count(app, OutboxMessage) == mails + 2


def test_bulk_refuses_a_malformed_selection_and_nothing_selected(app, client, q, admin):
    client.post("/admin/billings/bulk", data={"action": "approve", "billing": ["1:x"]})
    assert "malformed" in _flashes(client)[0]
    client.post("/admin/billings/bulk", data={"action": "approve"})
    assert "Select at least one" in _flashes(client)[0]
    client.post("/admin/billings/bulk", data={"billing": _pairs(app, q.b[1])})
    assert "Choose an action" in _flashes(client)[0]
    assert get(app, Billing, q.b[1]).status == BillingStatus.UNDER_REVIEW


def test_bulk_remind_only_drafts(app, client, q, admin):
    pairs = _pairs(app, q.b[1], q.b[6])
    client.post("/admin/billings/bulk", data={"action": "remind", "billing": pairs})
    messages = _flashes(client)
    assert messages[0] == "0 reminded, 2 skipped."
    assert "nothing to remind" in messages[1]
    assert "never invited" in messages[2]


def test_viewer_may_see_the_queue_but_not_decide(app, client, q, auth):
    auth.login_user(q.staff["viewer"])
    html = client.get("/admin/queue").text
    assert 'name="billing"' not in html
    response = client.post(
        "/admin/billings/bulk",
        data={"action": "approve", "billing": _pairs(app, q.b[1])},
    )
    assert response.status_code == 403
    assert get(app, Billing, q.b[1]).status == BillingStatus.UNDER_REVIEW


def test_period_dashboard_has_the_billings_bulk_form(app, client, q, admin):
    html = client.get(f"/admin/periods/{q.a1}").text
    assert 'id="billings-bulk"' in html
    assert f'form="billings-bulk" name="billing" value="{q.b[1]}:' in html
    client.post(
        "/admin/billings/bulk",
        data={
            "action": "approve",
            "billing": _pairs(app, q.b[1]),
            "back": f"/admin/periods/{q.a1}",
        },
    )
    assert get(app, Billing, q.b[1]).status == BillingStatus.APPROVED


def _count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(
            sa.select(sa.func.count()).select_from(model).where(*where)
        )


def _lines(app, billing_id):
    with app.app_context():
        billing = db.session.get(Billing, billing_id)
        out = list(billing.lines)
        db.session.expunge_all()
        return out


class TestCsrf:
    @pytest.fixture
    def app_config(self) -> dict:
        return {"WTF_CSRF_ENABLED": True}

    def test_bulk_needs_the_csrf_token(self, app, client, q, admin):
        pairs = _pairs(app, q.b[1])
        response = client.post(
            "/admin/billings/bulk", data={"action": "approve", "billing": pairs}
        )
        assert response.status_code == 400
        assert get(app, Billing, q.b[1]).status == BillingStatus.UNDER_REVIEW
        page = client.get("/admin/queue").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
        response = client.post(
            "/admin/billings/bulk",
            data={"action": "approve", "billing": pairs, "csrf_token": token},
        )
        assert response.status_code == 302
        assert get(app, Billing, q.b[1]).status == BillingStatus.APPROVED
