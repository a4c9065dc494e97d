"""Contact portal views."""

from __future__ import annotations

from flask import render_template

from . import bp


@bp.route("/")
def index():  # noqa: ANN201
    """The contact's home page."""
    return render_template("contact/index.html")
