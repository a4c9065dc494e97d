"""Hostile uploads (SPEC §2 attachments): each answer, then the database and the
upload folder (no row, no audit event, no file left behind for a refusal)."""

from __future__ import annotations

import io
import os
import zipfile

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Attachment, AuditEvent

from ..contact.test_attachments import DOCX, JPEG, PDF, PNG, _xlsx

LIMIT = 16 * 1024


@pytest.fixture
def app_config() -> dict:
    """A small upload limit (16 KB) so "one byte over" is cheap to send."""
    return {
        "MAX_UPLOAD_BYTES": LIMIT,
        "MAX_CONTENT_LENGTH": 64 * 1024,
        "MAX_FORM_PARTS": 50,
    }


@pytest.fixture
def draft(app, auth, w, make_billing):
    billing_id = make_billing(w)
    auth.login_contact(w.contact_id)
    return billing_id


def _upload(
    client,
    billing_id: int,
    content: bytes,
    name: str,
    mimetype: str = "application/octet-stream",
    **extra,
):
    return client.post(
        f"/portal/billings/{billing_id}/attachments",
        data={
            "kind": "invoice",
            "file": (io.BytesIO(content), name, mimetype),
            **extra,
        },
        content_type="multipart/form-data",
    )


def _state(app) -> tuple[int, int, list[str]]:
    folder = app.config["UPLOAD_FOLDER"]
    files = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    with app.app_context():
        rows = db.session.scalar(sa.select(sa.func.count(Attachment.id)))
        events = db.session.scalar(
            sa.select(sa.func.count(AuditEvent.id)).where(
                AuditEvent.action == "attachment.upload"
            )
        )
        db.session.remove()
    return rows, events, files


def _zip(names: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in names.items():
            archive.writestr(name, data)
    return buf.getvalue()


HTML = (
    b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
)
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" '
    b'onload="alert(1)"><script>alert(2)</script></svg>'
)
REFUSED = {
    # wrong type behind a right extension
    "html-as-pdf": (HTML, "invoice.pdf", "application/pdf"),
    "svg-as-png": (SVG, "photo.png", "image/png"),
    "exe-as-pdf": (b"MZ\x90\x00\x03" + b"\x00" * 60, "invoice.pdf", "application/pdf"),
    "jpeg-as-png": (JPEG, "photo.png", "image/png"),
    "png-as-jpg": (PNG, "photo.jpg", "image/jpeg"),
    "pdf-as-docx": (PDF, "waiver.docx", "application/octet-stream"),
    "docx-as-xlsx": (DOCX, "sov.xlsx", "application/octet-stream"),
    "zip-as-xlsx": (_zip({"xl/x.xml": b"<x/>"}), "sov.xlsx", "application/zip"),
    "broken-zip-as-docx": (
        b"PK\x03\x04" + b"\x00" * 30,
        "waiver.docx",
        "application/zip",
    ),
    "text-as-jpg": (b"just some text", "photo.jpg", "image/jpeg"),
    # markup with script, under its own name
    "html": (HTML, "invoice.html", "text/html"),
    "htm": (HTML, "invoice.htm", "text/html"),
    "xhtml": (HTML, "invoice.xhtml", "application/xhtml+xml"),
    "svg": (SVG, "logo.svg", "image/svg+xml"),
    "svgz": (SVG, "logo.svgz", "image/svg+xml"),
    "js": (b"alert(1)", "x.js", "text/javascript"),
    "double-extension": (HTML, "invoice.pdf.html", "text/html"),
    "no-extension": (PDF, "invoice", "application/pdf"),
    "rtl-override-name": (
        b"MZ" + b"\x00" * 30,
        "invoice\u202efdp.exe",
        "application/pdf",
    ),
    # sizes
    "zero-bytes": (b"", "invoice.pdf", "application/pdf"),
    "one-byte-over": (
        PDF + b"0" * (LIMIT + 1 - len(PDF)),
        "invoice.pdf",
        "application/pdf",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_upload(app, client, draft, case: str) -> None:
    content, name, mimetype = REFUSED[case]
    before = _state(app)
    response = _upload(client, draft, content, name, mimetype)
    assert response.status_code == 422
    assert 'id="file-error"' in response.get_data(
        as_text=True
    ) or "is-invalid" in response.get_data(as_text=True)
    assert _state(app) == before


def test_exactly_the_limit_is_accepted(app, client, draft) -> None:
    content = PDF + b"0" * (LIMIT - len(PDF))
    before = _state(app)
    assert _upload(client, draft, content, "invoice.pdf").status_code == 302
    rows, events, files = _state(app)
    assert (rows, events, len(files)) == (
        before[0] + 1,
        before[1] + 1,
        len(before[2]) + 1,
    )
    with app.app_context():
        assert db.session.scalars(sa.select(Attachment)).one().size == LIMIT


def test_request_over_max_content_length_is_413(app, client, draft) -> None:
    before = _state(app)
    response = _upload(client, draft, PDF + b"0" * (70 * 1024), "invoice.pdf")
    assert response.status_code == 413
    assert _state(app) == before


def test_too_many_parts_is_413(app, client, draft) -> None:
    before = _state(app)
    extra = {f"field{n}": "x" for n in range(60)}
    response = _upload(client, draft, PDF, "invoice.pdf", **extra)
    assert response.status_code == 413
    assert _state(app) == before
    # (MAX_FORM_PARTS bounds multipart bodies; a urlencoded form is bounded by
    # MAX_CONTENT_LENGTH, and unknown fields in it are ignored.)
    response = client.post(
        f"/portal/billings/{draft}",
        data={f"line-{n}-work": "1" for n in range(60)} | {"action": "save"},
    )
    assert response.status_code == 302


TRAVERSAL = [
    "../../../etc/passwd.pdf",
    "..\\..\\windows\\system32\\x.pdf",
    "/etc/cron.d/x.pdf",
    "C:\\Users\\x\\invoice.pdf",
    "....//....//x.pdf",
    "%2e%2e%2f%2e%2e%2fx.pdf",
    ".htaccess.pdf",
    "invoice\x00.html.pdf",
    "a\r\nContent-Type: text/html\r\n.pdf",
    '"; filename="evil.html.pdf',
    "x" * 300 + ".pdf",
]


@pytest.mark.parametrize("name", TRAVERSAL, ids=lambda n: repr(n[:30]))
def test_path_traversal_names(app, client, draft, name: str) -> None:
    """The file lands in the upload folder under a random name; the name kept
    for the download has no path, no control characters, no leading dot. (A
    name the multipart parser cuts short loses its extension: refused.)"""
    folder = app.config["UPLOAD_FOLDER"]
    os.makedirs(folder, exist_ok=True)
    parent = os.path.dirname(os.path.abspath(folder))
    outside = set(os.listdir(parent))
    before = _state(app)
    response = _upload(client, draft, PDF, name, "application/pdf")
    assert set(os.listdir(parent)) == outside
    if response.status_code == 422:
        assert "\r" in name and _state(app) == before
        return
    assert response.status_code == 302
    with app.app_context():
        attachment = db.session.scalars(sa.select(Attachment)).one()
        kept = attachment.original_name
        assert kept.endswith(".pdf") and len(kept) <= 255
        assert not kept.startswith(".") and not any(c in kept for c in "/\\\x00\r\n")
        assert ".." not in kept.replace("%2e", "")
        assert os.listdir(folder) == [attachment.stored_name]
        assert len(attachment.stored_name) == 32 and attachment.stored_name.isalnum()
        attachment_id = attachment.id
    download = client.get(f"/portal/attachments/{attachment_id}")
    assert download.status_code == 200
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "\r" not in disposition and "\n" not in disposition
    assert download.data == PDF


def test_polyglot_is_stored_as_pdf_and_never_rendered(
    app, client, auth, draft, w
) -> None:
    """A real PDF header followed by HTML is accepted as a PDF, and every
    download (contact or staff) forces a download in a sandbox."""
    polyglot = PDF + HTML
    response = _upload(client, draft, polyglot, "invoice.pdf", "text/html")
    assert response.status_code == 302
    with app.app_context():
        attachment = db.session.scalars(sa.select(Attachment)).one()
        assert attachment.content_type == "application/pdf"  # not the browser's
        attachment_id = attachment.id
    for who in ("contact", "admin"):
        if who == "admin":
            auth.login_user(w.admin_id)
            url = f"/admin/attachments/{attachment_id}"
        else:
            url = f"/portal/attachments/{attachment_id}"
        download = client.get(url)
        assert download.status_code == 200
        assert download.headers["Content-Type"] == "application/pdf"
        assert download.headers["Content-Disposition"].startswith("attachment;")
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in download.headers["Content-Security-Policy"]
        assert "no-store" in download.headers["Cache-Control"]


def test_upload_to_another_contacts_billing_is_404(
    app, client, auth, w, make_billing
) -> None:
    billing_id = make_billing(w)
    auth.login_contact(w.other_contact_id)
    before = _state(app)
    assert _upload(client, billing_id, PDF, "invoice.pdf").status_code == 404
    assert _state(app) == before


@pytest.mark.parametrize("kind", ["", "receipt", "<script>", "invoice\x00", "x" * 500])
def test_unknown_kind_is_refused(app, client, draft, kind: str) -> None:
    before = _state(app)
    response = client.post(
        f"/portal/billings/{draft}/attachments",
        data={"kind": kind, "file": (io.BytesIO(PDF), "invoice.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "<script>" not in response.get_data(as_text=True).split("<body", 1)[
        1
    ].replace("<script src=", "")
    assert _state(app) == before


def test_accepted_types_still_work(app, client, draft) -> None:
    """The checks refuse what they should and nothing more."""
    for content, name in (
        (PDF, "a.pdf"),
        (PNG, "b.png"),
        (JPEG, "c.jpg"),
        (_xlsx(), "d.xlsx"),
        (DOCX, "e.docx"),
    ):
        assert _upload(client, draft, content, name).status_code == 302, name
    rows, events, files = _state(app)
    assert (rows, events, len(files)) == (5, 5, 5)


# ------------------------------------------------------------------ issue 17


def _says_beside_the_field(response, words: str) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code == 422, response.status_code
    assert words in text
    assert 'id="file-error"' in text or "is-invalid" in text


def test_unavailable_upload_folder_says_so_beside_the_field(app, client, draft) -> None:
    """The storage path is not a directory (a broken mount): a real OSError."""
    folder = app.config["UPLOAD_FOLDER"]
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    if os.path.isdir(folder):
        os.rmdir(folder)
    with open(folder, "wb") as blocker:
        blocker.write(b"not a folder")
    try:
        before = _state_rows(app)
        response = _upload(client, draft, PDF, "invoice.pdf", "application/pdf")
        _says_beside_the_field(response, "could not be stored")
        assert _state_rows(app) == before
    finally:
        os.remove(folder)


def test_full_disk_says_so_and_leaves_no_partial_file(
    app, client, draft, monkeypatch
) -> None:
    """Writes go to /dev/full (the kernel's "no space left on device")."""
    import builtins

    from portal.billing import attachments

    real_open = builtins.open

    def full_open(path, mode="r", *args, **kwargs):
        if mode == "xb":
            real_open(path, "xb").close()  # the partial file exists...
            return real_open("/dev/full", "wb", buffering=0)  # ...and cannot grow
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(attachments, "open", full_open, raising=False)
    before = _state(app)
    response = _upload(client, draft, PDF, "invoice.pdf", "application/pdf")
    _says_beside_the_field(response, "could not be stored")
    assert _state(app) == before  # no row, no event, no .part file


def test_files_per_billing_are_bounded(app, client, draft) -> None:
    app.config["MAX_FILES_PER_BILLING"] = 3
    codes = [
        _upload(client, draft, PDF, f"invoice{n}.pdf", "application/pdf").status_code
        for n in range(3)
    ]
    assert codes == [302] * 3
    before = _state(app)
    response = _upload(client, draft, PDF, "one-more.pdf", "application/pdf")
    _says_beside_the_field(response, "the most allowed")
    assert _state(app) == before


def _state_rows(app) -> tuple[int, int]:
    rows, events, _ = _state(app)
    return rows, events
