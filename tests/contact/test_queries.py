"""SPEC §11: the portal's pages run a fixed number of queries however much data."""

from __future__ import annotations

from portal.billing import billings
from portal.extensions import db
from portal.models import BillingPeriod, Contact, Project, User, Vendor

from .. import factories as f
from ..helpers import counting


def _add_commitments(app, w, n: int, lines: int) -> list[int]:
    """``n`` more commitments of ``lines`` lines for the contact, each with a billing."""
    ids = []
    with app.app_context():
        contact = db.session.get(Contact, w.contact_id)
        project = db.session.get(Project, w.project_id)
        vendor = db.session.get(Vendor, w.vendor_id)
        period = db.session.get(BillingPeriod, w.period1_id)
        for _ in range(n):
            c = f.make_commitment(
                project, vendor, [("01-100", "1000.00")] * lines, [contact]
            )
            b = billings.create_billing(c, period, contact)
            billings.save_billing(
                b,
                contact,
                billings.BillingInput(
                    lines={bl.sov_line_id: ("10", "1") for bl in b.lines}
                ),
                b.version,
            )
            billings.add_comment(b, contact, "hello")
            billings.add_comment(b, db.session.get(User, w.admin_id), "hi back")
            ids.append(b.id)
        db.session.commit()
        db.session.remove()
    return ids


def _queries(app, client, url: str) -> int:
    with counting(app) as statements:
        assert client.get(url).status_code == 200
    return len(statements)


def test_home_and_billing_pages_do_not_grow_with_data(app, client, auth, w):
    small = _add_commitments(app, w, 1, 2)
    auth.login_contact(w.contact_id)
    home_small = _queries(app, client, "/portal/")
    page_small = _queries(app, client, f"/portal/billings/{small[0]}")
    big = _add_commitments(app, w, 6, 12)
    assert _queries(app, client, "/portal/") == home_small
    assert _queries(app, client, f"/portal/billings/{big[-1]}") == page_small
