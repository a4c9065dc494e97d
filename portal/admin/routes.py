"""Back-office views. Every view is guarded: the blueprint fails closed."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from ..auth import role_required
from ..extensions import login_manager
from . import bp


@bp.before_request
def require_staff():  # noqa: ANN201
    """Fail closed: only signed-in staff reach any admin view but the login page."""
    from flask import abort, request

    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_staff:
        abort(403)
    return None


#: Endpoints reachable without a staff session.
PUBLIC_ENDPOINTS = {"admin.login"}


@bp.route("/")
@role_required("admin", "finance", "viewer")
def index():  # noqa: ANN201
    """The back-office home page."""
    return render_template("admin/index.html")
