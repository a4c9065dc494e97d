"""Billing attachments: checked uploads, private storage, safe downloads (SPEC §2).

Used by the contact portal and the back office alike. A file is accepted only
when its extension is one we allow *and* its first bytes (magic numbers) say the
same thing: the browser's content type and the name alone prove nothing. Files
live in ``UPLOAD_FOLDER`` (outside the web root) under random names, with their
SHA-256; they are served only as downloads (``Content-Disposition:
attachment``) with ``X-Content-Type-Options: nosniff``. Callers decide who may
download (:func:`may_access`).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import IO, Any

import sqlalchemy as sa
from flask import Response, abort, current_app, send_file
from werkzeug.datastructures import FileStorage
from werkzeug.security import safe_join

from portal import audit
from portal.core.statuses import AttachmentKind, BillingStatus
from portal.extensions import db
from portal.locks import lock_rows
from portal.models import Attachment, Billing, Contact, User

CHUNK = 64 * 1024


@dataclass(frozen=True)
class FileType:
    """One accepted kind of file."""

    label: str
    content_type: str
    extensions: tuple[str, ...]


PDF = FileType("PDF", "application/pdf", ("pdf",))
PNG = FileType("PNG image", "image/png", ("png",))
JPEG = FileType("JPEG image", "image/jpeg", ("jpg", "jpeg"))
XLSX = FileType(
    "Excel workbook",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ("xlsx",),
)
DOCX = FileType(
    "Word document",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ("docx",),
)
FILE_TYPES = (PDF, PNG, JPEG, XLSX, DOCX)
BY_EXTENSION = {ext: ft for ft in FILE_TYPES for ext in ft.extensions}
#: For the file input's ``accept`` attribute (a hint only; the server decides).
ACCEPT = ",".join(f".{ext}" for ext in BY_EXTENSION)

KIND_LABELS = {
    AttachmentKind.INVOICE: "Invoice",
    AttachmentKind.LIEN_WAIVER: "Lien waiver",
    AttachmentKind.OTHER: "Other",
}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
MAX_NAME = 255


class UploadError(ValueError):
    """A refused upload; ``str(e)`` is the message to show beside the file field."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def max_bytes() -> int:
    """The configured largest upload, in bytes."""
    return int(current_app.config["MAX_UPLOAD_BYTES"])


def human_size(size: int) -> str:
    """``2.5 MB`` style sizes for people."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover - loop always returns


def clean_name(filename: str | None) -> str:
    """The file's own name without any path, control characters or excess length."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    name = name.lstrip(".").strip()
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (
            stem[: MAX_NAME - len(ext) - 1] + "." + ext
            if dot and len(ext) <= 10
            else name[:MAX_NAME]
        )
    return name


def _extension(name: str) -> str:
    return name.rpartition(".")[2].lower() if "." in name else ""


def sniff(path: str, head: bytes) -> FileType | None:
    """What the content really is (by magic bytes), or None if nothing we accept."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(PNG_SIGNATURE):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(ZIP_SIGNATURE):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return None
        if "[Content_Types].xml" not in names:
            return None
        if any(n.startswith("xl/") for n in names):
            return XLSX
        if any(n.startswith("word/") for n in names):
            return DOCX
    return None


def upload_folder() -> str:
    """The storage directory (created on first use)."""
    folder = current_app.config["UPLOAD_FOLDER"]
    os.makedirs(folder, exist_ok=True)
    return folder


def _copy_limited(stream: IO[bytes], target: str, limit: int) -> tuple[int, str, bytes]:
    """Copy at most ``limit`` bytes; return (size, sha256, first bytes)."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    with open(target, "xb") as out:
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise UploadError(
                    f"This file is larger than the {human_size(limit)} limit. "
                    "Please upload a smaller file (for example a PDF scanned at a "
                    "lower resolution)."
                )
            if len(head) < 16:
                head += chunk[: 16 - len(head)]
            digest.update(chunk)
            out.write(chunk)
    return size, digest.hexdigest(), head


def save_upload(
    billing: Billing,
    file_storage: FileStorage | None,
    kind: str,
    uploader: User | Contact,
) -> Attachment:
    """Check, store and record an uploaded file for ``billing`` (no commit).

    :raise UploadError: no file, wrong kind, empty, too large, or content that is
        not what its name says (HTML, SVG and anything else are refused).
    """
    if billing.status == BillingStatus.VOID:
        raise UploadError("This billing was voided; files can no longer be added.")
    if kind not in {k.value for k in AttachmentKind}:
        raise UploadError("Choose what the file is: invoice, lien waiver or other.")
    if file_storage is None or not file_storage.filename:
        raise UploadError("Choose a file to upload.")
    name = clean_name(file_storage.filename)
    expected = BY_EXTENSION.get(_extension(name))
    if not name or expected is None:
        raise UploadError(
            "Upload a PDF, PNG, JPEG, Excel (.xlsx) or Word (.docx) file."
        )
    # The quota is counted under the billing's row lock: two uploads at once
    # cannot both take the last place.
    quota = int(current_app.config.get("MAX_FILES_PER_BILLING") or 0)
    if quota:
        lock_rows(Billing, Billing.id == billing.id)
        count = db.session.scalar(
            sa.select(sa.func.count(Attachment.id)).where(
                Attachment.billing_id == billing.id
            )
        )
        if (count or 0) >= quota:
            raise UploadError(
                f"This billing already has {quota} files, the most allowed. "
                "Delete one you no longer need, or combine documents into one PDF."
            )
    stored_name = secrets.token_hex(16)
    partial = ""
    try:
        folder = upload_folder()
        final = os.path.join(folder, stored_name)
        partial = final + ".part"
        size, sha256, head = _copy_limited(file_storage.stream, partial, max_bytes())
        if size == 0:
            raise UploadError("This file is empty. Please choose the right file.")
        actual = sniff(partial, head)
        if actual is not expected:
            raise UploadError(
                f"This file does not look like a real {expected.label} "
                f"(.{_extension(name)}). Please upload the original document."
            )
        os.replace(partial, final)
    except OSError as exc:
        # Disk full, read-only or missing storage: nothing half-written stays,
        # and the person is told beside the file field (issue 17).
        if partial:
            _remove(partial)
        current_app.logger.error("upload storage failed: %s", exc)
        raise UploadError(
            "The file could not be stored: the server's file storage is full or "
            "unavailable. Nothing was saved. Please try again later."
        ) from exc
    except BaseException:
        if partial:
            _remove(partial)
        raise
    attachment = Attachment(
        billing_id=billing.id,
        uploaded_by_user_id=uploader.id if isinstance(uploader, User) else None,
        uploaded_by_contact_id=uploader.id if isinstance(uploader, Contact) else None,
        original_name=name,
        stored_name=stored_name,
        content_type=expected.content_type,
        size=size,
        sha256=sha256,
        kind=kind,
    )
    db.session.add(attachment)
    db.session.flush()
    audit.record(
        uploader,
        "attachment.upload",
        billing,
        after={
            "attachment_id": attachment.id,
            "name": name,
            "kind": kind,
            "size": size,
            "sha256": sha256,
        },
    )
    return attachment


def delete_attachment(attachment: Attachment, actor: User | Contact) -> None:
    """Remove an attachment row (the file goes once the caller commits: discard_file)."""
    audit.record(
        actor,
        "attachment.delete",
        attachment.billing,
        before={
            "attachment_id": attachment.id,
            "name": attachment.original_name,
            "kind": attachment.kind,
            "sha256": attachment.sha256,
        },
    )
    db.session.delete(attachment)
    db.session.flush()


def stored_path(attachment: Attachment) -> str | None:
    """Where the file lives, or None for a name that would leave the folder."""
    return safe_join(current_app.config["UPLOAD_FOLDER"], attachment.stored_name)


def discard_file(attachment: Attachment) -> None:
    """Delete the stored file (after a failed commit, or once the row is gone)."""
    path = stored_path(attachment)
    if path:
        _remove(path)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def may_access(attachment: Attachment, account: Any) -> bool:
    """Back-office users, and contacts of the billing's commitment, may download."""
    if account is None or not getattr(account, "is_authenticated", False):
        return False
    if account.is_staff:
        return True
    if account.is_contact:
        return any(c.id == account.id for c in attachment.billing.commitment.contacts)
    return False


def send_attachment(attachment: Attachment) -> Response:
    """The file as a download, never rendered inline (access is the caller's check)."""
    path = stored_path(attachment)
    if not path or not os.path.isfile(path):
        abort(404)
    response = send_file(
        path,
        mimetype=attachment.content_type,
        as_attachment=True,
        download_name=attachment.original_name or f"attachment-{attachment.id}",
        max_age=0,
        etag=attachment.sha256,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
