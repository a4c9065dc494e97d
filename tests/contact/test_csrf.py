"""CSRF: every portal POST is refused without the form's token, and nothing changes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Billing, LoginLink, OutboxMessage

from .conftest import count, csrf_from, form_for, version_of


@pytest.fixture
def app_config() -> dict:
    return {"WTF_CSRF_ENABLED": True}


def test_link_exchange_needs_the_csrf_token(app, client, w, issue, app_ctx):
    token = issue(w.contact_id)
    page = client.get(f"/portal/link/{token}")
    response = client.post(f"/portal/link/{token}", data={"action": "continue"})
    assert response.status_code == 400
    with app_ctx():
        assert db.session.scalars(sa.select(LoginLink)).one().used_at is None
    assert client.get("/portal/").status_code == 401
    response = client.post(
        f"/portal/link/{token}",
        data={"action": "continue", "csrf_token": csrf_from(page.text)},
    )
    assert response.status_code == 302
    assert client.get("/portal/").status_code == 200


def test_billing_and_new_link_forms_need_the_csrf_token(
    app, client, auth, w, make_billing, app_ctx
):
    billing_id = make_billing(w)
    auth.login_contact(w.contact_id)
    data = form_for(w, version_of(app, billing_id), "save", l1w="100")
    assert client.post(f"/portal/billings/{billing_id}", data=data).status_code == 400
    assert (
        client.post(
            "/portal/new-link", data={"email": "casey@example-electric.example"}
        ).status_code
        == 400
    )
    assert client.post("/portal/logout").status_code == 400
    with app_ctx():
        assert db.session.get(Billing, billing_id).version == data_version(data)
        assert count(OutboxMessage) == 0
    page = client.get(f"/portal/billings/{billing_id}")
    data["csrf_token"] = csrf_from(page.text)
    assert client.post(f"/portal/billings/{billing_id}", data=data).status_code == 302


def data_version(data: dict) -> int:
    return int(data["version"])
