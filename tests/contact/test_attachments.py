"""Attachments: magic-byte checks, private storage, downloads only for the right people."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile

import pytest
import sqlalchemy as sa
from openpyxl import Workbook

from portal.billing import attachments
from portal.extensions import db
from portal.models import Attachment, AuditEvent, Billing, User

from .conftest import count, form_for, version_of

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40 + b"\xff\xd9"


def _xlsx() -> bytes:
    buf = io.BytesIO()
    wb = Workbook()
    wb.active["A1"] = "Invoice"
    wb.save(buf)
    return buf.getvalue()


def _zip(names: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in names.items():
            archive.writestr(name, data)
    return buf.getvalue()


DOCX = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})


@pytest.fixture
def draft(app, client, auth, w, make_billing):
    billing_id = make_billing(w)
    auth.login_contact(w.contact_id)
    return billing_id


def _upload(client, billing_id: int, content: bytes, name: str, kind: str = "invoice"):
    return client.post(
        f"/portal/billings/{billing_id}/attachments",
        data={"kind": kind, "file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )


def _files(app) -> list[str]:
    folder = app.config["UPLOAD_FOLDER"]
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


@pytest.mark.parametrize(
    ("content", "name", "content_type"),
    [
        (PDF, "invoice.pdf", "application/pdf"),
        (PNG, "photo.PNG", "image/png"),
        (JPEG, "photo.jpeg", "image/jpeg"),
        (JPEG, "photo.jpg", "image/jpeg"),
        (_xlsx(), "sov.xlsx", attachments.XLSX.content_type),
        (DOCX, "waiver.docx", attachments.DOCX.content_type),
    ],
)
def test_accepted_files_are_stored_privately_with_their_hash(
    app, client, w, draft, app_ctx, content, name, content_type
):
    response = _upload(client, draft, content, name, "lien_waiver")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(
        f"/portal/billings/{draft}#attachments"
    )
    with app_ctx():
        att = db.session.scalars(sa.select(Attachment)).one()
        assert (att.billing_id, att.original_name, att.kind) == (
            draft,
            name,
            "lien_waiver",
        )
        assert att.content_type == content_type
        assert att.size == len(content)
        assert att.sha256 == hashlib.sha256(content).hexdigest()
        assert att.uploaded_by_contact_id == w.contact_id
        assert len(att.stored_name) == 32 and name not in att.stored_name
        path = os.path.join(app.config["UPLOAD_FOLDER"], att.stored_name)
        with open(path, "rb") as fh:
            assert fh.read() == content
        event = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "attachment.upload")
        ).one()
        assert event.after["sha256"] == att.sha256
        att_id = att.id
    page = client.get(f"/portal/billings/{draft}").text
    assert name in page and f"/portal/attachments/{att_id}" in page
    download = client.get(f"/portal/attachments/{att_id}")
    assert download.status_code == 200
    assert download.data == content
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in download.headers["Cache-Control"]
    assert download.mimetype == content_type


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.pdf", "This file is empty"),
        (
            b"<html><script>alert(1)</script></html>",
            "invoice.pdf",
            "does not look like a real PDF",
        ),
        (b"<html><body>hi</body></html>", "page.html", "Upload a PDF, PNG, JPEG"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
            "logo.svg",
            "Upload a PDF, PNG, JPEG",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"/>',
            "logo.png",
            "does not look like a real PNG",
        ),
        (PNG, "invoice.pdf", "does not look like a real PDF"),
        (PDF, "photo.jpg", "does not look like a real JPEG"),
        (b"MZ\x90\x00" + b"\x00" * 60, "setup.exe", "Upload a PDF, PNG, JPEG"),
        (_zip({"evil.txt": b"x"}), "sov.xlsx", "does not look like a real Excel"),
        (
            _zip({"[Content_Types].xml": b"<Types/>", "x.xml": b"x"}),
            "waiver.docx",
            "does not look like a real Word",
        ),
        (_xlsx(), "waiver.docx", "does not look like a real Word"),
        (b"PK\x03\x04 not really a zip", "sov.xlsx", "does not look like a real Excel"),
        (PDF, "noextension", "Upload a PDF, PNG, JPEG"),
        (PDF, "", "Choose a file to upload."),
    ],
)
def test_refused_files_leave_nothing_behind(
    app, client, w, draft, app_ctx, content, name, message
):
    response = _upload(client, draft, content, name)
    assert response.status_code == 422
    assert 'id="file-error"' in response.text
    assert message in response.text
    with app_ctx():
        assert count(Attachment) == 0
        assert count(AuditEvent, AuditEvent.action == "attachment.upload") == 0
    assert _files(app) == []


def test_over_the_size_limit_is_refused(app, client, w, draft, app_ctx):
    app.config["MAX_UPLOAD_BYTES"] = 1024
    response = _upload(client, draft, PDF + b"0" * 2000, "big.pdf")
    assert response.status_code == 422
    assert "larger than the 1.0 KB limit" in response.text
    assert _files(app) == []
    assert _upload(client, draft, PDF + b"0" * 900, "ok.pdf").status_code == 302
    with app_ctx():
        assert count(Attachment) == 1


def test_kind_must_be_known(app, client, w, draft, app_ctx):
    response = _upload(client, draft, PDF, "a.pdf", kind="contract")
    assert response.status_code == 422
    assert "Choose what the file is" in response.text
    with app_ctx():
        assert count(Attachment) == 0


def test_file_names_lose_their_paths(app, client, w, draft, app_ctx):
    _upload(client, draft, PDF, "../../etc/Rechnung März.pdf")
    with app_ctx():
        att = db.session.scalars(sa.select(Attachment)).one()
        assert att.original_name == "Rechnung März.pdf"
        att_id = att.id
    response = client.get(f"/portal/attachments/{att_id}")
    assert (
        "filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf"
        in response.headers["Content-Disposition"]
    )


def test_downloads_only_for_the_commitments_contacts_and_staff(
    app, client, auth, w, draft, app_ctx
):
    _upload(client, draft, PDF, "invoice.pdf")
    with app_ctx():
        att = db.session.scalars(sa.select(Attachment)).one()
        att_id = att.id
        admin = db.session.get(User, w.admin_id)
        assert attachments.may_access(att, admin)
    auth.login_contact(w.other_contact_id)
    assert client.get(f"/portal/attachments/{att_id}").status_code == 404
    assert client.post(f"/portal/attachments/{att_id}/delete").status_code == 404
    anonymous = app.test_client()
    assert anonymous.get(f"/portal/attachments/{att_id}").status_code == 401
    with app.test_request_context():
        att = db.session.get(Attachment, att_id)
        response = attachments.send_attachment(att)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        db.session.remove()
    with app_ctx():
        assert count(Attachment) == 1


def test_remove_own_file_while_editable_only(app, client, w, draft, app_ctx):
    _upload(client, draft, PDF, "wrong.pdf")
    _upload(client, draft, PDF, "right.pdf")
    with app_ctx():
        wrong, right = db.session.scalars(
            sa.select(Attachment).order_by(Attachment.id)
        ).all()
        wrong_id, right_id, wrong_name = wrong.id, right.id, wrong.stored_name
    assert client.post(f"/portal/attachments/{wrong_id}/delete").status_code == 302
    with app_ctx():
        assert db.session.get(Attachment, wrong_id) is None
        assert count(AuditEvent, AuditEvent.action == "attachment.delete") == 1
    assert wrong_name not in _files(app)
    client.post(
        f"/portal/billings/{draft}",
        data=form_for(w, version_of(app, draft), "submit", l1w="100"),
    )
    response = client.post(f"/portal/attachments/{right_id}/delete")
    assert response.status_code == 302
    with app_ctx():
        assert db.session.get(Attachment, right_id) is not None
        assert db.session.get(Billing, draft).status == "under_review"
    # A lien waiver can still be added once the billing is submitted.
    assert _upload(client, draft, PDF, "waiver.pdf", "lien_waiver").status_code == 302
