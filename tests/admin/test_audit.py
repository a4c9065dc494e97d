"""The global audit log: filters and paging."""

from __future__ import annotations

from .conftest import make_everything


def test_audit_log_filters(app, client, auth, users) -> None:
    ids = make_everything(app)
    auth.login_user(users["admin"])
    client.post(f"/admin/contacts/{ids.contact_id}/revoke-links")
    everything = client.get("/admin/audit").get_data(as_text=True)
    assert "contact.revoke_links" in everything and "billing.create" in everything
    only = client.get("/admin/audit?action=contact.").get_data(as_text=True)
    assert "contact.revoke_links" in only and "billing.create" not in only
    by_object = client.get(
        f"/admin/audit?object_type=billing&object_id={ids.billing_id}"
    ).get_data(as_text=True)
    assert "billing.create" in by_object and "contact.revoke_links" not in by_object
    by_actor = client.get(f"/admin/audit?actor_id={users['admin']}").get_data(
        as_text=True
    )
    assert "contact.revoke_links" in by_actor and "billing.create" not in by_actor
    none = client.get("/admin/audit?since=2199-01-01").get_data(as_text=True)
    assert "No audit events match." in none
    today = client.get("/admin/audit?since=2000-01-01&until=2199-12-31").get_data(
        as_text=True
    )
    assert "contact.revoke_links" in today
    # Odd filters never break the page.
    assert (
        client.get("/admin/audit?since=garbage&object_id=x&page=0").status_code == 200
    )
    # The object column links to the object's page.
    assert f'href="/admin/billings/{ids.billing_id}"' in by_object
    auth.login_user(users["viewer"])
    assert client.get("/admin/audit").status_code == 200
    auth.login_user(users["finance"])
    assert client.get("/admin/audit").status_code == 403
