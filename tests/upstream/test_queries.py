"""SPEC §11: the claim pages run the same number of SQL statements however many
downstream billings and lines the claim gathers."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal import upstream
from portal.extensions import db
from portal.models import BillingPeriod, ClientClaim, ClientContract, User

from .. import factories as f
from ..helpers import bill, counting
from .scenario import build


def add_commitments(w, count: int) -> None:
    """``count`` more approved billings of 5 lines each on the claim's codes."""
    contract = db.session.get(ClientContract, w.contract_id)
    period = db.session.get(BillingPeriod, w.period1_id)
    admin = db.session.get(User, w.admin_id)
    for _ in range(count):
        commitment = f.make_commitment(
            contract.project,
            lines=[
                ("03-300", "1000.00"),
                ("26-100", "1000.00"),
                ("22-100", "1000.00"),
                ("01-500", "1000.00"),
                ("88-000", "1000.00"),
            ],
        )
        bill(commitment, period, admin, dict.fromkeys(range(1, 6), ("10.00", "1.00")))
    db.session.commit()


def count_queries(app, client, url: str) -> int:
    with counting(app) as statements:
        assert client.get(url).status_code == 200
    return len(statements)


@pytest.mark.parametrize("page", ["view", "trace", "period", "pdf"])
def test_claim_pages_do_not_query_per_billing(app, client, auth, page):
    with app.app_context():
        w = build()
    auth.login_user(w.admin_id)

    def measure() -> int:
        with app.app_context():
            claim = db.session.scalars(sa.select(ClientClaim)).first()
            if claim is None:
                claim = upstream.generate_claim(
                    db.session.get(ClientContract, w.contract_id),
                    db.session.get(BillingPeriod, w.period1_id),
                    db.session.get(User, w.admin_id),
                )
            else:
                upstream.regenerate(claim, db.session.get(User, w.admin_id))
            db.session.commit()
            claim_id = claim.id
        url = {
            "view": f"/admin/claims/{claim_id}",
            "trace": f"/admin/claims/{claim_id}/trace",
            "period": f"/admin/claims/periods/{w.period1_id}",
            "pdf": f"/admin/claims/{claim_id}/pdf",
        }[page]
        return count_queries(app, client, url)

    small = measure()
    with app.app_context():
        add_commitments(w, 6)
    assert measure() == small
