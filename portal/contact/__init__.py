"""The contact portal (``/portal/``): magic-link sessions for billing contacts."""

from flask import Blueprint

from portal.web import redact

bp = Blueprint("contact", __name__, url_prefix="/portal")
bp.record_once(lambda state: redact.install(state.app))

from portal.contact import routes  # noqa: E402,F401 - registers the views on bp
