"""Rate limits on the link pages (per client address)."""

from __future__ import annotations

import pytest

from portal.extensions import db
from portal.models import OutboxMessage

from .conftest import count


@pytest.fixture
def app_config() -> dict:
    return {"RATELIMIT_ENABLED": True}


def test_new_link_form_is_rate_limited(app, client, w, app_ctx):
    for _ in range(5):
        response = client.post("/portal/new-link", data={"email": "nobody@example.com"})
        assert response.status_code == 200
    response = client.post(
        "/portal/new-link", data={"email": "casey@example-electric.example"}
    )
    assert response.status_code == 429
    assert "Too many requests" in response.text
    with app_ctx():
        assert count(OutboxMessage) == 0
    # Reading the form is not limited; another address still gets through.
    assert client.get("/portal/new-link").status_code == 200
    other = app.test_client()
    response = other.post(
        "/portal/new-link",
        data={"email": "nobody@example.com"},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert response.status_code == 200


def test_link_posts_are_rate_limited(app, client, w, issue):
    token = issue(w.contact_id)
    bad = token[:-4] + "AAAA"
    for _ in range(10):
        assert client.post(f"/portal/link/{bad}").status_code == 410
    assert client.post(f"/portal/link/{token}").status_code == 429
    # The confirm page has its own (larger) allowance.
    assert client.get(f"/portal/link/{token}").status_code == 200
    with app.app_context():
        db.session.remove()
