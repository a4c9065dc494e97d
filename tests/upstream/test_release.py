"""Retainage released on an HC/Client claim (SPEC §4 line 5, §9): service and page.

Claim 1 of the scenario (tests/upstream/scenario.py) holds 8,291.09 of
retainage (L1 2,530.00 + L2 4,905.53 + L3 855.56) and pays 74,503.82.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal import upstream
from portal.billing.billings import BillingError, ValidationFailed
from portal.extensions import db
from portal.models import AuditEvent, BillingPeriod, ClientClaim, ClientContract, User

from .. import factories as f
from .scenario import build

D = Decimal
HELD = D("2530.00") + D("4905.53") + D("855.56")


@pytest.fixture
def w(app):
    with app.app_context():
        world = build()
        world.viewer_id = f.make_user("viewer").id
        claim = upstream.generate_claim(
            db.session.get(ClientContract, world.contract_id),
            db.session.get(BillingPeriod, world.period1_id),
            db.session.get(User, world.admin_id),
        )
        db.session.commit()
        world.claim_id = claim.id
    return world


def _state(app, w):
    with app.app_context():
        claim = db.session.get(ClientClaim, w.claim_id)
        totals = upstream.claim_sheet(claim).totals
        events = db.session.scalar(
            sa.select(sa.func.count(AuditEvent.id)).where(
                AuditEvent.action == "claim.retainage_released"
            )
        )
        return claim.retainage_released, claim.version, totals, events


def test_release_lowers_line_5_and_raises_line_8(app, w) -> None:
    released, version, before, _ = _state(app, w)
    assert released == D("0.00")
    assert before.retainage == HELD
    with app.app_context():
        claim = db.session.get(ClientClaim, w.claim_id)
        admin = db.session.get(User, w.admin_id)
        upstream.set_retainage_released(claim, admin, "1,000.50", version)
        db.session.commit()
    released, new_version, after, events = _state(app, w)
    assert released == D("1000.50")
    assert new_version == version + 1
    assert after.retainage_released_to_date == D("1000.50")
    assert after.retainage == HELD - D("1000.50")
    assert after.current_payment_due == before.current_payment_due + D("1000.50")
    assert after.total_completed_and_stored == before.total_completed_and_stored
    assert events == 1


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("8,291.10", "than is held (8,291.09 available)"),
        ("-1.00", ""),
        ("12abc", ""),
        ("1.005", ""),
    ],
)
def test_bad_amounts_are_refused_and_change_nothing(app, w, raw, message) -> None:
    released, version, before, _ = _state(app, w)
    with app.app_context():
        claim = db.session.get(ClientClaim, w.claim_id)
        admin = db.session.get(User, w.admin_id)
        with pytest.raises(ValidationFailed) as caught:
            upstream.set_retainage_released(claim, admin, raw, version)
        db.session.rollback()
    assert caught.value.errors["retainage_released"]
    assert message in caught.value.errors["retainage_released"]
    assert _state(app, w) == (released, version, before, 0)


def test_the_whole_held_amount_can_be_released(app, w) -> None:
    with app.app_context():
        claim = db.session.get(ClientClaim, w.claim_id)
        admin = db.session.get(User, w.admin_id)
        upstream.set_retainage_released(claim, admin, str(HELD), claim.version)
        db.session.commit()
    assert _state(app, w)[2].retainage == D("0.00")


def test_stale_version_and_submitted_claim_are_refused(app, w) -> None:
    with app.app_context():
        claim = db.session.get(ClientClaim, w.claim_id)
        admin = db.session.get(User, w.admin_id)
        with pytest.raises(BillingError, match="changed by someone else"):
            upstream.set_retainage_released(claim, admin, "10.00", claim.version - 1)
        db.session.rollback()
        claim = db.session.get(ClientClaim, w.claim_id)
        upstream.submit_claim(claim, admin, claim.version, accept_unmapped=True)
        db.session.commit()
        with pytest.raises(BillingError, match="frozen"):
            upstream.set_retainage_released(claim, admin, "10.00", claim.version)
        db.session.rollback()
        assert db.session.get(ClientClaim, w.claim_id).retainage_released == 0


def test_the_page_form_saves_and_shows_errors_on_the_field(
    app,
    client,
    auth,
    w,
) -> None:
    auth.login_user(w.admin_id)
    page = client.get(f"/admin/claims/{w.claim_id}").get_data(as_text=True)
    assert 'name="retainage_released"' in page
    version = re.search(
        r'claims/\d+/retainage-released".*?name="version" value="(\d+)"', page, re.S
    )[1]
    response = client.post(
        f"/admin/claims/{w.claim_id}/retainage-released",
        data={"retainage_released": "9,999.00", "version": version},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "is-invalid" in html
    assert "than is held (8,291.09 available)" in html
    assert 'value="9,999.00"' in html  # what was typed stays in the field
    assert _state(app, w)[0] == 0
    response = client.post(
        f"/admin/claims/{w.claim_id}/retainage-released",
        data={"retainage_released": "500", "version": version},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "released on this claim: 500.00" in response.get_data(as_text=True)
    assert _state(app, w)[0] == D("500.00")
    # The same form again (a double click): the version is stale, nothing changes.
    response = client.post(
        f"/admin/claims/{w.claim_id}/retainage-released",
        data={"retainage_released": "700", "version": version},
        follow_redirects=True,
    )
    assert "changed by someone else" in response.get_data(as_text=True)
    assert _state(app, w)[0] == D("500.00")


def test_viewer_cannot_release(app, client, auth, w) -> None:
    auth.login_user(w.viewer_id)
    page = client.get(f"/admin/claims/{w.claim_id}").get_data(as_text=True)
    assert 'name="retainage_released"' not in page
    response = client.post(
        f"/admin/claims/{w.claim_id}/retainage-released",
        data={"retainage_released": "10", "version": "1"},
    )
    assert response.status_code == 403
    assert _state(app, w)[0] == 0
