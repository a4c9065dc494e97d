"""The upstream claim view and the claims of a period run the same number of
statements with 4 and with 44 downstream billings in the claim (issue 16 item 3):
both read the claim's stored sums and list the billings a page at a time; the
view never reads a downstream billing line."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal import upstream
from portal.extensions import db
from portal.models import BillingPeriod, ClientClaim, ClientContract, User

from ..helpers import counting
from ..upstream.scenario import build
from ..upstream.test_queries import add_commitments


def _claim(w) -> ClientClaim:
    admin = db.session.get(User, w.admin_id)
    claim = db.session.scalars(sa.select(ClientClaim)).first()
    if claim is None:
        claim = upstream.generate_claim(
            db.session.get(ClientContract, w.contract_id),
            db.session.get(BillingPeriod, w.period1_id),
            admin,
        )
    else:
        upstream.regenerate(claim, admin)
    db.session.commit()
    return claim


@pytest.mark.parametrize("submitted", [False, True], ids=["draft", "submitted"])
def test_claim_pages_are_flat_with_the_billings(app, client, auth, submitted):
    with app.app_context():
        w = build()
    auth.login_user(w.admin_id)

    def measure() -> dict[str, int]:
        with app.app_context():
            claim = _claim(w)
            if submitted:
                admin = db.session.get(User, w.admin_id)
                upstream.submit_claim(claim, admin, accept_unmapped=True)
                db.session.commit()
            claim_id, period_id = claim.id, claim.period_id
            engine = db.engine
        out = {}
        for name, url in [
            ("view", f"/admin/claims/{claim_id}"),
            ("period", f"/admin/claims/periods/{period_id}"),
        ]:
            with counting(engine) as statements:
                response = client.get(url)
            assert response.status_code == 200
            out[name] = len(statements)
            if name == "view":
                # Stored sums: the downstream lines are never read.
                assert not [s for s in statements if "billing_lines" in s], name
        if submitted:
            with app.app_context():
                claim = db.session.get(ClientClaim, claim_id)
                upstream.back_to_draft(claim, db.session.get(User, w.admin_id))
                db.session.commit()
        return out

    small = measure()
    with app.app_context():
        add_commitments(w, 40)  # past a page (25) of included billings
    large = measure()
    assert small == large
