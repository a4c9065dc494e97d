"""Helpers shared by the back-office views: paging, form pages, set-up redirects."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup

from portal import generations
from portal.admin.forms import BackForm
from portal.billing.figures import _cents
from portal.core.statuses import ADMINS, AUDITORS, READERS, ChangeOrderStatus
from portal.extensions import db
from portal.models import ChangeOrder, ChangeOrderItem, SovLine, User, Vendor
from portal.validation import parse_id
from portal.web import fragments, templating
from portal.web.forms import StrictForm

__all__ = ["ADMINS", "AUDITORS", "READERS"]


def vendor_options(selected: int | None) -> Markup:
    """Every vendor as an ``<option>`` of a filter, ``selected`` marked.

    The list grows with the vendors (500 on the benchmark database), so it is
    rendered once per version of the vendors (the global counter, which every
    vendor write bumps: portal.generations) in each worker's page cache, and
    the selected option is marked on the copy."""

    def render() -> str:
        rows = db.session.execute(
            sa.select(Vendor.id, Vendor.name).order_by(Vendor.name, Vendor.id)
        ).all()
        return render_template("admin/_vendor_options.html", vendors=rows)

    key = ("admin.vendor_options", generations.global_value())
    html = str(fragments.part(key, render))
    if selected:
        mark = f'<option value="{int(selected)}">'
        html = html.replace(mark, f'<option value="{int(selected)}" selected>', 1)
    return templating.rendered(html)


def me() -> User:
    """The signed-in staff user (views behind role_required only)."""
    return current_user._get_current_object()


def page_arg(values: Mapping[str, str] | None = None) -> int:
    """The ``page`` query argument, or of ``values`` (a posted form): 1 when
    missing or odd."""
    raw = (request.args if values is None else values).get("page", "1")
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


def form_state(form: StrictForm | None) -> tuple[Any, dict[str, str]]:
    """(posted values, field → message) of a submitted form, for its page."""
    if form is None:
        return {}, {}
    return form.values, form.messages


def form_page(
    template: str,
    form: StrictForm | None = None,
    *,
    status: int = 200,
    **context: Any,
):
    """Render a form page with the posted values and errors (400 when invalid)."""
    db.session.rollback()
    values, errors = form_state(form)
    if errors:
        flash("Please correct the highlighted fields.", "danger")
        status = 400
    return (
        render_template(template, values=values, errors=errors, **context),
        status,
    )


# ------------------------------------------------- set-up pages


def pct_text(value) -> str:
    return f"{value.normalize():f}" if value is not None else ""


def done(message: str, endpoint: str, **values: Any):
    db.session.commit()
    flash(message, "success")
    return redirect(url_for(endpoint, **values))


def refused(exc: Exception, endpoint: str, **values: Any):
    db.session.rollback()
    flash(str(exc), "danger")
    return redirect(url_for(endpoint, **values))


def scheduled_totals(commitment_ids: list[int]) -> dict[int, object]:
    """Original + approved change orders per commitment, in two queries."""
    if not commitment_ids:
        return {}
    original = dict(
        db.session.execute(
            sa.select(SovLine.commitment_id, sa.func.sum(SovLine.original_value))
            .where(SovLine.commitment_id.in_(commitment_ids))
            .group_by(SovLine.commitment_id)
        ).all()
    )
    changes = dict(
        db.session.execute(
            sa.select(ChangeOrder.commitment_id, sa.func.sum(ChangeOrderItem.amount))
            .join(ChangeOrderItem, ChangeOrderItem.change_order_id == ChangeOrder.id)
            .where(
                ChangeOrder.commitment_id.in_(commitment_ids),
                ChangeOrder.status == ChangeOrderStatus.APPROVED,
            )
            .group_by(ChangeOrder.commitment_id)
        ).all()
    )
    return {
        cid: _cents(original.get(cid)) + _cents(changes.get(cid))
        for cid in commitment_ids
    }


def back_url(default: str, **values: Any) -> str:
    """Where to return after a small POST: a local ``back`` field, else ``default``."""
    from portal.accounts.auth import safe_next

    target = BackForm().target
    fallback = url_for(default, **values)
    # safe_next's own fallback can't carry ``values``: a foreign ``back`` used to
    # build url_for(default) without them (a BuildError, so a 500).
    return target if target and safe_next(target) == target else fallback


def uploaded_bytes() -> bytes | None:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return None
    return upload.stream.read(1024 * 1024 + 1)
