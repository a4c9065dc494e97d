"""The contact billing page and the review run a fixed number of statements
however many comment authors a billing has (issue 16: authors were lazy-loaded
one statement each), and the contact page does not load the commitment's
contacts again after the ownership check found the contact on it."""

from __future__ import annotations

from portal.billing import billings as wf
from portal.extensions import db
from portal.models import Billing, BillingPeriod, Commitment, Contact, User

from .. import factories as f
from ..helpers import bill, build_world, counting


def _world(app, today) -> tuple[int, int, int]:
    """A billing under review and its contact: (billing id, contact id, admin id)."""
    with app.app_context():
        w = build_world(today)
        admin = db.session.get(User, w.admin_id)
        commitment = db.session.get(Commitment, w.commitment_id)
        period = db.session.get(BillingPeriod, w.period1_id)
        billing = bill(commitment, period, admin, {1: ("100.00", "0")}, decide="review")
        db.session.commit()
        return billing.id, w.contact_id, w.admin_id


def _comment(app, billing_id: int, contact_id: int, n: int) -> None:
    """A comment by a new staff user, and the contact's answer."""
    with app.app_context():
        billing = db.session.get(Billing, billing_id)
        user = f.make_user(email=f"reviewer{n}@example.com")
        wf.add_comment(billing, user, f"Comment {n}")
        wf.add_comment(billing, db.session.get(Contact, contact_id), f"Answer {n}")
        db.session.commit()


def _count(app, client, auth, who: str, user_id: int, url: str) -> list[str]:
    (auth.login_contact if who == "contact" else auth.login_user)(user_id)
    with counting(app) as statements:
        response = client.get(url)
    assert response.status_code == 200
    return statements


def test_pages_do_not_grow_with_comment_authors(app, client, auth, today) -> None:
    billing_id, contact_id, admin_id = _world(app, today)
    counts = []
    for authors in (1, 6):
        while _authors(app, billing_id) < authors:
            _comment(app, billing_id, contact_id, _authors(app, billing_id))
        contact = _count(
            app, client, auth, "contact", contact_id, f"/portal/billings/{billing_id}"
        )
        review = _count(
            app, client, auth, "admin", admin_id, f"/admin/billings/{billing_id}"
        )
        counts.append((len(contact), len(review)))
    assert counts[0] == counts[1], counts
    auth.login_contact(contact_id)
    page = client.get(f"/portal/billings/{billing_id}").get_data(as_text=True)
    assert "Comment 5" in page and "Answer 5" in page


def _authors(app, billing_id: int) -> int:
    with app.app_context():
        return len(db.session.get(Billing, billing_id).comments) // 2


def test_contact_page_trusts_the_ownership_check(app, client, auth, today) -> None:
    """A draft (editable) page asks whether the contact may bill: the query that
    found the billing already proved the contact is on the commitment."""
    with app.app_context():
        w = build_world(today)
        admin = db.session.get(User, w.admin_id)
        commitment = db.session.get(Commitment, w.commitment_id)
        period = db.session.get(BillingPeriod, w.period1_id)
        billing = bill(commitment, period, admin, {1: ("100.00", "0")}, decide="draft")
        db.session.commit()
        billing_id, contact_id = billing.id, w.contact_id
    statements = _count(
        app, client, auth, "contact", contact_id, f"/portal/billings/{billing_id}"
    )
    # (The session's own statement reads the contact with the page's key,
    # whose ownership test names commitment_contacts: not a load of them.)
    loads = [
        s
        for s in statements
        if "commitment_contacts" in s
        and "contacts.email" in s
        and "own_billing" not in s
    ]
    assert not loads, loads
    page = client.get(f"/portal/billings/{billing_id}").get_data(as_text=True)
    assert 'name="action" value="submit"' in page or "Submit" in page
    # Removed from the commitment, the contact no longer finds the billing.
    with app.app_context():
        commitment = db.session.get(Commitment, w.commitment_id)
        commitment.contacts = [c for c in commitment.contacts if c.id != contact_id]
        db.session.commit()
    assert client.get(f"/portal/billings/{billing_id}").status_code == 404
