"""The contact portal (``/portal/``): magic-link sessions for billing contacts."""

from flask import Blueprint

bp = Blueprint("contact", __name__, url_prefix="/portal")

from . import routes  # noqa: E402,F401 - registers the views on bp
