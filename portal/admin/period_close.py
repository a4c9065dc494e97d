"""The period close checklist (``/admin/periods/<id>/close-out``): what still
blocks the period's owner invoice and exports, and the button that generates
the owner invoice when nothing does. Not the ``/periods/<id>/close`` action,
which only closes the period to billing.

Reading is open to every staff role; generating is for admins (as
``/claims/generate``). The checklist is :func:`portal.billing.close.period_close`.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal import upstream
from portal.accounts.auth import role_required
from portal.admin import bp
from portal.admin.common import ADMINS, READERS, me
from portal.billing import close
from portal.billing.billings import BillingError
from portal.extensions import db
from portal.models import BillingPeriod
from portal.web.templating import term


def _period_or_404(period_id: int) -> BillingPeriod:
    return db.get_or_404(BillingPeriod, period_id)


#: Blocker kind → (heading, what fixes it), in the page's order.
HEADINGS = {
    close.UNDECIDED: ("Billings not decided", "Review"),
    close.AWAITING: ("Invited, no billing yet", "Remind on the dashboard"),
    close.DECLINED: ("Declined invitations", "Invite another contact"),
    close.NOT_INVITED: ("Commitments not invited", "Invite on the dashboard"),
    close.NO_CONTACT: ("Commitments with no billing contact", "Add a contact"),
    close.CONTRACT: ("Client contracts not ready to claim", "Open the contract"),
    close.NO_CONTRACT: ("No client contract", "Add a client contract"),
}


def _fix_url(blocker: close.Blocker, period: BillingPeriod) -> str:
    """The page that fixes ``blocker``."""
    if blocker.kind == close.UNDECIDED and blocker.billing is not None:
        return url_for("admin.billing_review", billing_id=blocker.billing.id)
    if blocker.kind == close.NO_CONTACT and blocker.commitment is not None:
        return url_for("admin.commitment_view", commitment_id=blocker.commitment.id)
    if blocker.kind in (close.AWAITING, close.DECLINED, close.NOT_INVITED):
        return url_for(
            "admin.period_dashboard",
            period_id=period.id,
            state=blocker.state,
            _anchor=f"row-{blocker.commitment.id}" if blocker.commitment else None,
        )
    if blocker.kind == close.CONTRACT and blocker.contract is not None:
        return url_for("admin.client_contract_view", contract_id=blocker.contract.id)
    return url_for("admin.client_contract_new", project_id=period.project_id)


def _groups(checklist: close.PeriodClose) -> list[dict]:
    period = checklist.period
    out = []
    for kind, (heading, fix) in HEADINGS.items():
        items = [(b, _fix_url(b, period)) for b in checklist.by_kind(kind)]
        if items:
            out.append({"kind": kind, "heading": heading, "fix": fix, "items": items})
    return out


@bp.route("/periods/<int:period_id>/close-out")
@role_required(*READERS)
def period_close_out(period_id: int):
    """The period close checklist: blockers with their fixes, what is ready."""
    period = _period_or_404(period_id)
    # Held for the whole request: the session's identity map is weak, so a
    # project only the page's lazy loads reach could be collected between two
    # of them and loaded again (one statement more on a large period).
    project = period.project
    checklist = close.period_close(period)
    return render_template(
        "admin/period_close.html",
        period=period,
        project=project,
        close=checklist,
        groups=_groups(checklist),
        can_generate=current_user.has_role(*ADMINS) and checklist.can_generate,
    )


@bp.route("/periods/<int:period_id>/close-out/generate", methods=["POST"])
@role_required(*ADMINS)
def period_close_generate(period_id: int) -> Response:
    """Generate the owner invoice (one draft claim per client contract that has
    none) after checking again that nothing blocks it: all or nothing."""
    period = _period_or_404(period_id)
    back = redirect(url_for("admin.period_close_out", period_id=period.id))
    checklist = close.period_close(period)
    if checklist.blockers:
        n = len(checklist.blockers)
        flash(
            f"Nothing was generated: {n} item{'' if n == 1 else 's'} now "
            f"block{'s' if n == 1 else ''} the {term('client_claim')} (listed "
            "below). Fix them, then generate again.",
            "danger",
        )
        return back
    contracts = checklist.to_generate
    if not contracts:
        flash(f"Every {term('client_claim')} of this period exists already.", "info")
        return back
    try:
        claims = [upstream.generate_claim(c, period, me()) for c in contracts]
    except BillingError as exc:
        db.session.rollback()
        flash(f"Nothing was generated: {exc}", "danger")
        return back
    db.session.commit()
    numbers = ", ".join(f"#{c.claim_number}" for c in claims)
    flash(
        f"{term('Client_claim')} {numbers} generated as a draft for period "
        f"#{period.sequence}.",
        "success",
    )
    if len(claims) == 1:
        return redirect(url_for("admin.claim_view", claim_id=claims[0].id))
    return back
