"""Finance (``/exports/``): export batches, ERP settings and the JSON API."""

from flask import Blueprint

bp = Blueprint("exports", __name__, url_prefix="/exports")

from portal.exports import api, routes  # noqa: E402,F401 - registers the views on bp
