"""Friendly error pages; a 500 rolls the session back first."""

from __future__ import annotations

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

from portal.extensions import db


def register_error_handlers(app: Flask) -> None:
    """Render 4xx/5xx as pages (or JSON under an API path)."""

    def render(error: HTTPException):
        code = error.code or 500
        # Keep the headers the exception carries: a 405's Allow, a 401's
        # WWW-Authenticate, a 429's Retry-After (RFC 9110).
        headers = [
            (k, v)
            for k, v in error.get_headers()
            if k.lower() not in ("content-type", "content-length")
        ]
        if request.path.startswith("/exports/api/"):
            return {"error": error.name, "message": error.description}, code, headers
        template = (
            f"errors/{code}.html" if code in (403, 404, 500) else "errors/generic.html"
        )
        return render_template(template, error=error, code=code), code, headers

    for code in (400, 401, 403, 404, 405, 409, 413, 429):
        app.register_error_handler(code, render)

    @app.errorhandler(500)
    def internal_error(error: Exception):
        db.session.rollback()
        if request.path.startswith("/exports/api/"):
            return {
                "error": "Internal Server Error",
                "message": "Something went wrong.",
            }, 500
        return render_template("errors/500.html", code=500), 500
