"""File responses the blueprints share (PDF downloads)."""

from __future__ import annotations

import re
from io import BytesIO

from flask import Response, send_file


def pdf_response(data: bytes, name: str) -> Response:
    """A PDF download named ``name``.pdf (safe characters only), never cached."""
    safe_name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "document"
    response = send_file(
        BytesIO(data),
        mimetype="application/pdf",
        as_attachment=True,
        download_name=f"{safe_name}.pdf",
        max_age=0,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
