"""Helpers shared by the back-office views: role groups, paging, form pages."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, flash, render_template, request
from flask_login import current_user

from portal.core.statuses import ADMINS, AUDITORS, READERS
from portal.extensions import db
from portal.forms import StrictForm
from portal.models import User
from portal.validation import Form, parse_id

__all__ = ["ADMINS", "AUDITORS", "READERS"]


def me() -> User:
    """The signed-in staff user (views behind role_required only)."""
    return current_user._get_current_object()  # type: ignore[attr-defined,no-any-return]


def page_arg() -> int:
    """The ``page`` query argument (1 when missing or odd)."""
    raw = request.args.get("page", "1")
    return int(raw) if re.fullmatch(r"[1-9][0-9]{0,5}", raw or "") else 1


def per_page() -> int:
    """Rows per page from the configuration."""
    return int(current_app.config.get("PAGE_SIZE", 25))


def arg_id(name: str) -> int | None:
    """A positive integer query argument, or None."""
    return parse_id(request.args.get(name, ""))


def arg_text(name: str, limit: int = 100) -> str:
    """A search box's text, stripped and bounded."""
    return (request.args.get(name) or "").replace("\x00", "").strip()[:limit]


def like(text: str) -> str:
    """A LIKE pattern that matches ``text`` literally anywhere."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def form_page(
    template: str,
    form: Form | StrictForm | None = None,
    status: int = 200,
    **context: Any,
):  # noqa: ANN201
    """Render a form page with the posted values and errors (400 when invalid)."""
    db.session.rollback()
    if isinstance(form, StrictForm):
        values, errors = form.values, form.messages
    else:
        values = form.data if form is not None else {}
        errors = form.errors if form is not None else {}
    if errors:
        flash("Please correct the highlighted fields.", "danger")
        status = 400
    return (
        render_template(template, values=values, errors=errors, **context),
        status,
    )
