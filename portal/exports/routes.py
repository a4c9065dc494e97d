"""Finance views."""

from __future__ import annotations

from flask import render_template

from ..auth import role_required
from . import bp


@bp.route("/")
@role_required("finance", "admin", "viewer")
def index():  # noqa: ANN201
    """Finance home: what is ready to export."""
    return render_template("exports/index.html")
