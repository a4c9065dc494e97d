"""The back office (``/admin/``): admins, finance and viewers."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from portal.admin import claims, periods, review, routes, setup, users  # noqa: E402,F401 - registers the views on bp
