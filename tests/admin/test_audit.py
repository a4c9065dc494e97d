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


def test_entries_say_what_changed_in_the_ui_s_words(app, client, auth, world) -> None:
    """Issue 14 item 14: an entry names its object as the UI does ("Progress
    billing #1 · SC-…", not "billing 4"), a save records the lines that
    changed, by line number, not "lines: 8 item(s)", and "revise lines" lists
    line numbers, not row ids. The page is valid HTML (no <br> in a <dl>)."""
    import sqlalchemy as sa

    from portal.billing import billings as wf
    from portal.extensions import db
    from portal.models import AuditEvent, Billing, BillingPeriod, Commitment, User

    with app.app_context():
        commitment = db.session.get(Commitment, world.commitment_id)
        period = db.session.get(BillingPeriod, world.period1_id)
        admin = db.session.get(User, world.admin_id)
        billing = wf.create_billing(commitment, period, admin)
        by_number = {bl.sov_line.line_number: bl for bl in billing.lines}
        second = by_number[2]
        wf.save_billing(
            billing,
            admin,
            wf.BillingInput(
                lines={second.sov_line_id: ("2500.00", "")},
                vendor_invoice_number="INV-9",
                notes="",
            ),
            billing.version,
        )
        wf.submit_billing(billing, admin, billing.version)
        wf.review_lines(
            billing,
            admin,
            {second.id: wf.LineReview("2000.00", "0", "revise", "Too high")},
            billing.version,
        )
        wf.send_back(billing, admin, billing.version, "")
        db.session.commit()
        billing_id, number = billing.id, commitment.number
        save = db.session.scalars(
            sa.select(AuditEvent).where(
                AuditEvent.action == "billing.save", AuditEvent.object_id == billing_id
            )
        ).one()
        assert save.before == {
            "vendor_invoice_number": "",
            "line 2": {"work": "0.00", "stored": "0.00", "installed": "0.00"},
        }
        assert save.after == {
            "vendor_invoice_number": "INV-9",
            "line 2": {"work": "2500.00", "stored": "0.00", "installed": "0.00"},
        }
        review = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "billing.review")
        ).one()
        assert list(review.after) == ["line 2"]
        assert review.after["line 2"]["approved work"] == "2000.00"
        assert review.after["line 2"]["reason"] == "Too high"
        sent_back = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "billing.send_back")
        ).one()
        assert sent_back.after["revise_lines"] == [2]
        application = db.session.get(Billing, billing_id).application_number
    auth.login_user(world.admin_id)
    page = client.get("/admin/audit?object_type=billing").get_data(as_text=True)
    assert f"Progress billing #{application} · {number}</a>" in page
    assert f">billing {billing_id}<" not in page
    assert 'line 2:</dt> <dd class="d-inline">work 2500.00, stored 0.00' in page
    assert 'revise lines:</dt> <dd class="d-inline">2</dd>' in page
    assert "item(s)" not in page
    assert "<br></dl>" not in page and "</dd><br>" not in page
