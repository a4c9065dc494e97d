"""The back office (``/admin/``): admins, finance and viewers."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from . import claims, routes  # noqa: E402,F401 - registers the views on bp
