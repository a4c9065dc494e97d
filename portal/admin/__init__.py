"""The back office (``/admin/``): admins, finance and viewers."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from portal.admin import (  # noqa: E402,F401 - registers the views on bp
    change_orders,
    claims,
    client_contracts,
    commitments,
    contacts,
    period_close,
    periods,
    projects,
    queue,
    review,
    routes,
    sov,
    users,
    vendors,
)
