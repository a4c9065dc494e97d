"""Hostile values that used to slip through (issue 17): ids beyond the
database's integer range in signed links, control characters in the ERP
cost-code key, the SOV CSV import and reason fields."""

from __future__ import annotations

import sqlalchemy as sa
from portal.sov_import import parse_sov_csv

from portal import invitations, tokens
from portal.extensions import db
from portal.models import Contact, ErpCostCode, Invitation

from .. import factories as f
from ..conftest import Auth

HOSTILE = "a\x1bb\x7fc\x07d"


def test_a_signed_token_naming_a_huge_id_is_an_invalid_link(app, client) -> None:  # noqa: ANN001
    with app.app_context(), app.test_request_context():
        token = tokens.serializer().dumps({"l": 2**40})
    for method in (client.get, client.post):
        response = method(f"/portal/link/{token}")
        assert response.status_code == 410, response.status_code


def test_erp_cost_code_key_with_control_characters_is_refused(app, client) -> None:  # noqa: ANN001
    with app.app_context():
        user_id = f.make_user("finance").id
        db.session.commit()
        db.session.remove()
    Auth(app, client).login_user(user_id)
    for key in ("26-100\x00", "26-100\r\nX", "26\x1b100"):
        response = client.post(
            "/exports/settings/cost-codes",
            data={"cc-0-code": key, "cc-0-sage_cost_code": "X1"},
        )
        assert response.status_code == 400, (key, response.status_code)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ErpCostCode.id))) == 0
        db.session.remove()


def test_sov_csv_import_drops_control_characters() -> None:
    data = (
        f"line,cost code,description,scheduled value\n1,26\x1b-100,{HOSTILE},100.00\n"
    )
    rows = parse_sov_csv(data.encode())
    assert [(r.cost_code, r.description) for r in rows] == [("26-100", "abcd")]


def test_decline_reason_drops_control_characters(ctx, world) -> None:  # noqa: ANN001
    contact = db.session.get(Contact, world.contact_id)
    invitation = Invitation(
        period_id=world.period1_id,
        commitment_id=world.commitment_id,
        contact_id=contact.id,
        status="invited",
    )
    db.session.add(invitation)
    db.session.flush()
    invitations.answer(invitation, contact, accept=False, reason=HOSTILE + "\nline 2")
    assert invitation.decline_reason == "abcd\nline 2"
