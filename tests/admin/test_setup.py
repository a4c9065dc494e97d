"""Set-up pages: projects, vendors, contacts, commitments, SOV lines (by hand and
CSV), change orders, billing contacts, client contracts; search and paging."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.billing import figures
from portal.extensions import db
from portal.models import (
    AuditEvent,
    ChangeOrder,
    ClientContract,
    ClientSovLine,
    Commitment,
    Contact,
    Invitation,
    Project,
    SovLine,
    Vendor,
)

from .. import factories as f
from .conftest import audit_actions, count, get

D = Decimal


@pytest.fixture
def admin(app, auth, users):
    auth.login_user(users["admin"])
    return users["admin"]


PROJECT = {
    "number": "2031",
    "name": "Harbor Lofts",
    "currency": "CAD",
    "address": "1 Pier Rd",
    "time_zone": "America/Toronto",
    "overbilling_allowed": "",
    "late_submissions_allowed": "1",
    "retainage_release_allowed": "1",
    "default_work_retainage_pct": "10",
    "default_materials_retainage_pct": "5",
    "terminology": "ca",
    "erp_job_number": "J-2031",
    "qb_customer_job": "",
}


def test_project_create_edit_and_audit(app, client, admin) -> None:
    assert client.get("/admin/projects/new").status_code == 200
    response = client.post("/admin/projects/new", data=PROJECT)
    assert response.status_code == 302
    with app.app_context():
        project = db.session.scalars(sa.select(Project)).one()
        assert (project.currency, project.terminology) == ("CAD", "ca")
        assert project.late_submissions_allowed and not project.overbilling_allowed
        assert project.default_materials_retainage_pct == D("5.0000")
        project_id = project.id
    page = client.get(f"/admin/projects/{project_id}").get_data(as_text=True)
    assert "Harbor Lofts" in page and "Holdback" in page  # the Canadian vocabulary
    response = client.post(
        f"/admin/projects/{project_id}/edit",
        data=PROJECT | {"overbilling_allowed": "1", "default_work_retainage_pct": "5"},
    )
    assert response.status_code == 302
    with app.app_context():
        event = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "project.update")
        ).one()
        assert event.before == {
            "default_work_retainage_pct": "10.0000",
            "overbilling_allowed": False,
        }
        assert event.after == {
            "default_work_retainage_pct": "5.0000",
            "overbilling_allowed": True,
        }
        assert event.actor_user_id == admin
    assert audit_actions(app, object_type="project") == [
        "project.create",
        "project.update",
    ]


def test_project_form_errors_are_field_errors(app, client, admin) -> None:
    client.post("/admin/projects/new", data=PROJECT)
    response = client.post(
        "/admin/projects/new",
        data=PROJECT
        | {
            "number": "2031",
            "currency": "EUR",
            "time_zone": "Mars/Olympus",
            "default_work_retainage_pct": "NaN",
            "default_materials_retainage_pct": "101",
            "name": "x" * 201,
        },
    )
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    for message in (
        "Choose one of the options.",
        "Enter a time zone like America/New_York.",
        "Enter an ordinary number, not NaN or Infinity.",
        "Enter a percentage between 0 and 100.",
        "Use at most 200 characters.",
    ):
        assert message in text, message
    response = client.post("/admin/projects/new", data=PROJECT | {"number": "2031"})
    assert response.status_code == 400
    assert "Another project already has this number." in response.get_data(as_text=True)
    assert count(app, Project) == 1


def test_vendor_and_contacts(app, client, admin) -> None:
    response = client.post(
        "/admin/vendors/new",
        data={"name": "Volt Bros", "address": "", "erp_vendor_code": "VOLT"},
    )
    assert response.status_code == 302
    vendor_id = int(re.search(r"/vendors/(\d+)", response.headers["Location"])[1])
    response = client.post(
        f"/admin/vendors/{vendor_id}/contacts/new",
        data={"name": "Ann Amp", "email": "Ann@Volt.example", "phone": ""},
    )
    assert response.status_code == 302
    # Same address, other case: a clear form error, not a 500.
    duplicate = client.post(
        f"/admin/vendors/{vendor_id}/contacts/new",
        data={"name": "Ann Again", "email": "ann@VOLT.example"},
    )
    assert duplicate.status_code == 400
    assert "already has a contact with this email address" in duplicate.get_data(
        as_text=True
    )
    bad = client.post(
        f"/admin/vendors/{vendor_id}/contacts/new",
        data={"name": "", "email": "not an email"},
    )
    assert bad.status_code == 400
    assert "Enter a valid email address" in bad.get_data(as_text=True)
    assert count(app, Contact) == 1
    # The same address at another vendor is fine.
    other = client.post(
        "/admin/vendors/new", data={"name": "Other Co", "erp_vendor_code": ""}
    )
    other_id = int(re.search(r"/vendors/(\d+)", other.headers["Location"])[1])
    assert (
        client.post(
            f"/admin/vendors/{other_id}/contacts/new",
            data={"name": "Ann at Other", "email": "ann@volt.example"},
        ).status_code
        == 302
    )
    # Changing a contact's email revokes the links already sent.
    with app.app_context():
        contact = db.session.scalars(
            sa.select(Contact).where(Contact.vendor_id == vendor_id)
        ).one()
        contact_id, version = contact.id, contact.token_version
    client.post(
        f"/admin/contacts/{contact_id}",
        data={"name": "Ann Amp", "email": "ann.amp@volt.example", "phone": "555"},
    )
    assert get(app, Contact, contact_id).token_version == version + 1
    dup_vendor = client.post(
        "/admin/vendors/new", data={"name": "volt bros", "erp_vendor_code": "VOLT"}
    )
    assert dup_vendor.status_code == 400
    text = dup_vendor.get_data(as_text=True)
    assert "Another vendor already has this name." in text
    assert "Another vendor already has this ERP code." in text
    assert count(app, Vendor) == 2


def _new_commitment(client, project_id: int, vendor_id: int, number="SC-900") -> int:
    response = client.post(
        f"/admin/projects/{project_id}/commitments/new",
        data={
            "vendor_id": vendor_id,
            "kind": "purchase_order",
            "number": number,
            "title": "Switchgear supply",
            "work_retainage_pct": "10",
            "materials_retainage_pct": "5",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(re.search(r"/commitments/(\d+)", response.headers["Location"])[1])


def test_commitment_sov_by_hand_contacts_and_approval(app, client, admin) -> None:
    with app.app_context():
        project = f.make_project()
        vendor = f.make_vendor()
        contact = f.make_contact(vendor)
        stranger = f.make_contact(f.make_vendor())
        db.session.commit()
        ids = project.id, vendor.id, contact.id, stranger.id
    project_id, vendor_id, contact_id, stranger_id = ids
    commitment_id = _new_commitment(client, project_id, vendor_id)
    url = f"/admin/commitments/{commitment_id}"
    assert get(app, Commitment, commitment_id).status == "draft"
    # Approving with no SOV line is refused.
    client.post(f"{url}/status", data={"status": "approved"})
    assert get(app, Commitment, commitment_id).status == "draft"
    for n, (code, value) in enumerate(
        [("26-100", "50,000.00"), ("26-200", "$30000")], start=1
    ):
        response = client.post(
            f"{url}/lines",
            data={
                "line_number": n,
                "cost_code": code,
                "description": f"Line {n}",
                "original_value": value,
            },
        )
        assert response.status_code == 302
    bad = client.post(
        f"{url}/lines",
        data={
            "line_number": "1",
            "cost_code": "",
            "description": "x",
            "original_value": "1.234",
        },
    )
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    assert "Use at most 2 decimal places." in text and "Enter a cost code." in text
    dup = client.post(
        f"{url}/lines",
        data={
            "line_number": "1",
            "cost_code": "9",
            "description": "x",
            "original_value": "1",
        },
    )
    assert "This line number is already used." in dup.get_data(as_text=True)
    assert count(app, SovLine) == 2
    page = client.get(url).get_data(as_text=True)
    assert "$80,000.00" in page
    # Billing contacts: only the vendor's own contacts.
    client.post(f"{url}/contacts", data={"contact_id": stranger_id})
    client.post(f"{url}/contacts", data={"contact_id": contact_id})
    with app.app_context():
        assert [c.id for c in db.session.get(Commitment, commitment_id).contacts] == [
            contact_id
        ]
    client.post(f"{url}/status", data={"status": "approved"})
    assert get(app, Commitment, commitment_id).status == "approved"
    # Approved: amounts change only through change orders.
    response = client.post(
        f"{url}/lines",
        data={
            "line_number": "3",
            "cost_code": "1",
            "description": "x",
            "original_value": "1",
        },
    )
    assert "change order" in client.get(response.headers["Location"]).get_data(
        as_text=True
    )
    assert count(app, SovLine) == 2
    actions = audit_actions(app, object_type="commitment", object_id=commitment_id)
    assert actions == [
        "commitment.create",
        "commitment.contact_add",
        "commitment.status",
    ]


def test_removing_a_contact_revokes_links_and_invitations(
    app, client, auth, world
) -> None:
    w = world
    auth.login_user(w.admin_id)
    client.post(
        f"/admin/periods/{w.period1_id}/bulk",
        data={"action": "invite", "commitment_ids": [str(w.commitment_id)]},
    )
    version = get(app, Contact, w.contact_id).token_version
    response = client.post(
        f"/admin/commitments/{w.commitment_id}/contacts/{w.contact_id}/remove"
    )
    assert response.status_code == 302
    assert get(app, Contact, w.contact_id).token_version == version + 1
    with app.app_context():
        invitation = db.session.scalars(sa.select(Invitation)).one()
        assert invitation.revoked_at is not None
        assert db.session.get(Commitment, w.commitment_id).contacts == []
    assert "commitment.contact_remove" in audit_actions(app, object_type="commitment")


GOOD_CSV = (
    "Line,Cost Code,Description,Scheduled Value\r\n"
    '2,03-300,Footings,"64,000.00"\r\n'
    "3,03-300,Slab on grade,$96000\r\n"
    ",03-310,Curing,9500.5\r\n"
)
BAD_CSV = (
    "line,cost_code,description,scheduled_value\n"
    "2,03-300,Footings,64000\n"
    "3,,Slab,abc\n"
    "2,03-400,Duplicate number,-5\n"
    "1,03-500,,1e5\n"
)


def _upload(client, url: str, text: str | bytes, name="sov.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        url,
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_sov_csv_import_all_or_nothing(app, client, admin) -> None:
    with app.app_context():
        project = f.make_project()
        commitment = f.make_commitment(project, status="draft")  # line 1 exists
        db.session.commit()
        commitment_id = commitment.id
    url = f"/admin/commitments/{commitment_id}/import"
    assert client.get(url).status_code == 200
    bad = _upload(client, url, BAD_CSV)
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    assert (
        "Row 3: cost code is blank; scheduled value: Enter an amount like 1,234.50."
        in text
    )
    assert (
        "Row 4: line 2 already exists; scheduled value: This amount cannot be negative."
        in text
    )
    assert (
        "Row 5: line 1 already exists; description is blank; scheduled value: "
        "Write the amount out in full, without an exponent like 1e5." in text
    )
    assert "Row 2" not in text  # the good row is fine, but nothing was saved
    assert count(app, SovLine, SovLine.commitment_id == commitment_id) == 1
    for junk, message in (
        (b"", "The file is empty."),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a CSV text file"),
        ("a,b\n1,2\n", "must name the columns"),
        ("cost_code,description,scheduled_value\n", "no lines"),
    ):
        response = _upload(client, url, junk)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True), message
    no_file = client.post(url, data={}, content_type="multipart/form-data")
    assert "Choose a CSV file to import." in no_file.get_data(as_text=True)
    good = _upload(client, url, "\ufeff" + GOOD_CSV)
    assert good.status_code == 302
    with app.app_context():
        lines = db.session.scalars(
            sa.select(SovLine)
            .where(SovLine.commitment_id == commitment_id)
            .order_by(SovLine.line_number)
        ).all()
        assert [(ln.line_number, ln.cost_code, ln.original_value) for ln in lines] == [
            (1, "01-100", D("10000.00")),
            (2, "03-300", D("64000.00")),
            (3, "03-300", D("96000.00")),
            (4, "03-310", D("9500.50")),
        ]
    assert "sov_line.import" in audit_actions(app, object_type="commitment")


def test_change_order_adds_to_lines_once_approved(app, client, auth, world) -> None:
    w = world
    auth.login_user(w.admin_id)
    response = client.post(
        f"/admin/commitments/{w.commitment_id}/change-orders",
        data={"co_number": "CO-2", "co_title": "Extra panel"},
    )
    assert response.status_code == 302
    co_id = int(re.search(r"/change-orders/(\d+)", response.headers["Location"])[1])
    url = f"/admin/change-orders/{co_id}"
    l1 = w.line_ids[0]
    client.post(
        f"{url}/items", data={"mode": "existing", "sov_line_id": l1, "amount": "2,500"}
    )
    client.post(
        f"{url}/items",
        data={
            "mode": "new",
            "cost_code": "26-400",
            "description": "Panel P4",
            "amount": "7000",
        },
    )
    zero = client.post(
        f"{url}/items", data={"mode": "existing", "sov_line_id": l1, "amount": "0"}
    )
    assert zero.status_code == 400
    assert "Enter an amount other than zero." in zero.get_data(as_text=True)

    def scheduled() -> list[D]:
        with app.app_context():
            commitment = db.session.get(Commitment, w.commitment_id)
            return [
                i.line.original_value + i.change_orders
                for i in figures.billable_sov_lines(commitment)
            ]

    # Pending: nothing counts yet (the new line is not billable).
    assert scheduled() == [D("50000.00"), D("35000.00"), D("20000.00")]
    client.post(f"{url}/approve")
    assert get(app, ChangeOrder, co_id).status == "approved"
    assert scheduled() == [D("52500.00"), D("35000.00"), D("20000.00"), D("7000.00")]
    # Approved change orders can't change any more.
    client.post(f"{url}/void")
    assert get(app, ChangeOrder, co_id).status == "approved"
    actions = audit_actions(app, object_type="change_order", object_id=co_id)
    assert actions == [
        "change_order.create",
        "change_order.item_add",
        "change_order.item_add",
        "change_order.approve",
    ]


def test_client_contract_lines_and_import(app, client, admin) -> None:
    with app.app_context():
        project = f.make_project()
        db.session.commit()
        project_id = project.id
    response = client.post(
        f"/admin/projects/{project_id}/client-contracts/new",
        data={
            "number": "HC-1",
            "title": "Head contract",
            "client_name": "Harbor Dev LLC",
            "work_retainage_pct": "10",
            "materials_retainage_pct": "10",
            "markup_pct": "8.5",
        },
    )
    assert response.status_code == 302
    contract_id = int(
        re.search(r"/client-contracts/(\d+)", response.headers["Location"])[1]
    )
    url = f"/admin/client-contracts/{contract_id}"
    client.post(
        f"{url}/lines",
        data={
            "line_number": "1",
            "cost_code": "03-300",
            "description": "Concrete",
            "scheduled_value": "480000",
        },
    )
    # Cost codes are unique per client contract (by hand and by CSV).
    dup = client.post(
        f"{url}/lines",
        data={
            "line_number": "2",
            "cost_code": "03-300",
            "description": "Again",
            "scheduled_value": "1",
        },
    )
    assert "Another line already has this cost code." in dup.get_data(as_text=True)
    bad = _upload(
        client,
        f"{url}/import",
        "cost_code,description,scheduled_value\n03-300,Dup,5\n05-100,Steel,310000\n",
    )
    assert bad.status_code == 400
    assert "Row 2: cost code 03-300 is already on another line." in bad.get_data(
        as_text=True
    )
    good = _upload(
        client,
        f"{url}/import",
        "cost_code,description,scheduled_value\n05-100,Steel,310000\n22-100,Plumbing,185000\n",
    )
    assert good.status_code == 302
    with app.app_context():
        contract = db.session.get(ClientContract, contract_id)
        assert contract.markup_pct == D("8.5000")
        assert [(ln.line_number, ln.cost_code) for ln in contract.lines] == [
            (1, "03-300"),
            (2, "05-100"),
            (3, "22-100"),
        ]
    client.post(f"{url}/status", data={"status": "approved"})
    assert get(app, ClientContract, contract_id).status == "approved"
    page = client.get(url).get_data(as_text=True)
    assert "$975,000.00" in page
    assert count(app, ClientSovLine) == 3


def test_lists_search_and_paginate(app, client, auth, users) -> None:
    app.config["PAGE_SIZE"] = 3
    with app.app_context():
        for i in range(7):
            f.make_project(number=f"P-{i:02d}", name=f"Tower {i}")
        vendor = f.make_vendor(name="Zephyr Glass")
        f.make_contact(vendor, email="glazier@zephyr.example")
        db.session.commit()
    auth.login_user(users["viewer"])
    first = client.get("/admin/projects").get_data(as_text=True)
    assert "P-00" in first and "P-03" not in first
    assert 'aria-label="Pages"' in first
    third = client.get("/admin/projects?page=3").get_data(as_text=True)
    assert "P-06" in third and "P-00" not in third
    found = client.get("/admin/projects?q=tower+5").get_data(as_text=True)
    assert "P-05" in found and "P-04" not in found
    assert "No projects match" in client.get("/admin/projects?q=%25%25").get_data(
        as_text=True
    )
    # Vendors are found by a contact's email too.
    assert "Zephyr Glass" in client.get("/admin/vendors?q=glazier@").get_data(
        as_text=True
    )
    assert client.get("/admin/projects?page=999").status_code == 200


def test_line_edits_follow_the_commitment_status(app, client, auth, world) -> None:
    """Approved commitment: description only. Draft: everything, and delete."""
    w = world
    auth.login_user(w.admin_id)
    l1 = w.line_ids[0]
    assert client.get(f"/admin/sov-lines/{l1}").status_code == 200
    refused = client.post(
        f"/admin/sov-lines/{l1}",
        data={
            "line_number": "1",
            "cost_code": "26-100",
            "description": "Rough-in",
            "original_value": "60,000",
        },
    )
    assert "Only the description can change" in client.get(
        refused.headers["Location"]
    ).get_data(as_text=True)
    renamed = client.post(
        f"/admin/sov-lines/{l1}",
        data={
            "line_number": "1",
            "cost_code": "26-100",
            "description": "Rough-in, all floors",
            "original_value": "50,000.00",
        },
    )
    assert renamed.status_code == 302
    line = get(app, SovLine, l1)
    assert (line.description, line.original_value) == (
        "Rough-in, all floors",
        D("50000.00"),
    )
    # The retainage of a commitment with billings is locked.
    client.post(
        "/admin/billings/new",
        data={"commitment_id": w.commitment_id, "period_id": w.period1_id},
    )
    locked = client.post(
        f"/admin/commitments/{w.commitment_id}/edit",
        data={
            "vendor_id": w.vendor_id,
            "kind": "subcontract",
            "number": "SC-100",
            "title": "Electrical",
            "work_retainage_pct": "5",
            "materials_retainage_pct": "5",
        },
    )
    assert locked.status_code == 400
    assert "change once the commitment has billings." in locked.get_data(as_text=True)
    # Back to draft is refused while billings exist.
    client.post(
        f"/admin/commitments/{w.commitment_id}/status", data={"status": "draft"}
    )
    assert get(app, Commitment, w.commitment_id).status == "approved"
    # The other commitment (no billings) goes back to draft; its line can go.
    with app.app_context():
        other_line = db.session.get(Commitment, w.other_commitment_id).sov_lines[0].id
    client.post(
        f"/admin/commitments/{w.other_commitment_id}/status", data={"status": "draft"}
    )
    assert get(app, Commitment, w.other_commitment_id).status == "draft"
    client.post(f"/admin/sov-lines/{other_line}/delete")
    assert get(app, SovLine, other_line) is None
    assert "sov_line.delete" in audit_actions(app, object_type="sov_line")


def test_change_order_items_can_be_removed_while_pending(
    app, client, auth, world
) -> None:
    w = world
    auth.login_user(w.admin_id)
    response = client.post(
        f"/admin/commitments/{w.commitment_id}/change-orders",
        data={"co_number": "CO-9", "co_title": "Maybe"},
    )
    co_id = int(re.search(r"/change-orders/(\d+)", response.headers["Location"])[1])
    client.post(
        f"/admin/change-orders/{co_id}/items",
        data={
            "mode": "new",
            "cost_code": "26-900",
            "description": "Temp power",
            "amount": "900",
        },
    )
    with app.app_context():
        co = db.session.get(ChangeOrder, co_id)
        item_id, line_id = co.items[0].id, co.items[0].sov_line_id
    client.post(f"/admin/change-order-items/{item_id}/remove")
    assert get(app, SovLine, line_id) is None  # the line it added went with it
    dup = client.post(
        f"/admin/commitments/{w.commitment_id}/change-orders",
        data={"co_number": "co-9", "co_title": "Again"},
    )
    assert dup.status_code == 400
    assert "already has this change order" in dup.get_data(as_text=True)
    client.post(f"/admin/change-orders/{co_id}/void")
    assert get(app, ChangeOrder, co_id).status == "void"


def test_a_change_order_adds_to_a_line_an_approved_change_order_created(
    app, client, auth, world
) -> None:
    """Issue 13 item 6: CO-2 created line 4; CO-3 lists it and adds to it, while
    a line a pending change order created is neither listed nor accepted."""
    w = world
    auth.login_user(w.admin_id)

    def new_co(number: str) -> str:
        response = client.post(
            f"/admin/commitments/{w.commitment_id}/change-orders",
            data={"co_number": number, "co_title": "Panels"},
        )
        assert response.status_code == 302
        return (
            "/admin/change-orders/"
            + re.search(r"/change-orders/(\d+)", response.headers["Location"])[1]
        )

    first = new_co("CO-2")
    client.post(
        f"{first}/items",
        data={
            "mode": "new",
            "cost_code": "26-400",
            "description": "Panel P4",
            "amount": "7000",
        },
    )
    pending = new_co("CO-4")
    client.post(
        f"{pending}/items",
        data={
            "mode": "new",
            "cost_code": "26-500",
            "description": "Panel P5",
            "amount": "1000",
        },
    )
    client.post(f"{first}/approve")
    with app.app_context():
        lines = {
            ln.cost_code: ln.id
            for ln in db.session.scalars(
                sa.select(SovLine).where(SovLine.commitment_id == w.commitment_id)
            )
        }
    second = new_co("CO-3")
    page = client.get(second).get_data(as_text=True)
    assert f'<option value="{lines["26-400"]}"' in page
    assert "Panel P4" in page
    assert f'<option value="{lines["26-500"]}"' not in page
    refused = client.post(
        f"{second}/items",
        data={"mode": "existing", "sov_line_id": lines["26-500"], "amount": "50"},
    )
    assert refused.status_code == 400
    assert "not approved yet" in refused.get_data(as_text=True)
    added = client.post(
        f"{second}/items",
        data={"mode": "existing", "sov_line_id": lines["26-400"], "amount": "-1,500"},
    )
    assert added.status_code == 302
    client.post(f"{second}/approve")
    assert get(app, ChangeOrder, int(second.rsplit("/", 1)[1])).status == "approved"
    with app.app_context():
        commitment = db.session.get(Commitment, w.commitment_id)
        scheduled = {
            i.line.cost_code: i.line.original_value + i.change_orders
            for i in figures.billable_sov_lines(commitment)
        }
    assert scheduled["26-400"] == D("5500.00")


def test_the_new_change_order_number_follows_the_last(app, client, auth, world) -> None:
    """Issue 14 item 15: the form offered "CO-1" when CO-1 existed."""
    from portal.contracts.change_orders import next_change_order_number

    assert next_change_order_number([]) == "CO-1"
    assert next_change_order_number(["CO-1", "CO-2"]) == "CO-3"
    assert next_change_order_number(["PCO-009", "PCO-002"]) == "PCO-010"
    assert next_change_order_number(["Extra", "CO-3", "CO-1"]) == "CO-4"
    assert next_change_order_number(["7", "CO-8"]) == "CO-9"

    w = world
    auth.login_user(w.admin_id)
    page = client.get(f"/admin/commitments/{w.commitment_id}").text
    offered = re.search(r'name="co_number"\s+value="([^"]*)"', page)[1]
    assert (
        client.post(
            f"/admin/commitments/{w.commitment_id}/change-orders",
            data={"co_number": offered, "co_title": "Extra panel"},
        ).status_code
        == 302
    )
    page = client.get(f"/admin/commitments/{w.commitment_id}").text
    again = re.search(r'name="co_number"\s+value="([^"]*)"', page)[1]
    assert again != offered
    assert again == next_change_order_number([offered])
    assert f'placeholder="{again}"' in page
