"""Contact portal views (SPEC §6, §10): magic links, home, billings, files, comments.

Every view but the link pages is for a signed-in contact only (a blueprint guard
fails closed). Views are thin: read the form, call a domain function, commit
once, then flash and redirect.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user

from portal import audit
from portal.accounts import auth, tokens
from portal.billing import attachments, billings, drafts, invitations
from portal.billing.attachments import UploadError
from portal.billing.billings import BillingError, StaleBilling, ValidationFailed
from portal.billing.drafts import (
    get_own_attachment,
    get_own_billing,
    get_own_commitment,
)
from portal.billing.invitations import InvitationError
from portal.contact import bp, forms
from portal.core.statuses import EDITABLE_STATUSES, AttachmentKind, BillingStatus
from portal.extensions import db, limiter
from portal.models import Billing
from portal.web import fragments, prefetch
from portal.web.downloads import pdf_response

#: Endpoints anyone may open (the link pages and logout).
PUBLIC_ENDPOINTS = {"contact.link", "contact.new_link", "contact.logout"}
#: Longest token we bother to look at (a real one is ~80 characters).
MAX_TOKEN = 400
ID = "int(max=2147483647)"


def _limit(key: str, default: str):
    return lambda: current_app.config.get(key, default)


RATE_LIMITED = (
    "Too many requests from your network. Please wait a minute and try again."
)


@bp.before_request
def require_contact():
    """Fail closed: only a contact's live session reaches the portal pages."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return render_template("contact/signed_out.html", email_error=None), 401
    if not current_user.is_contact:
        abort(403)
    return None


@bp.after_request
def private_headers(response: Response) -> Response:
    """Token and portal pages: never cached, never leak the URL to other sites."""
    response.headers["Referrer-Policy"] = "same-origin"
    if "no-store" not in response.headers.get("Cache-Control", ""):
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.context_processor
def portal_helpers() -> dict[str, Any]:
    """Helpers for the portal's templates."""
    return {
        "local_time": drafts.local_time,
        "kind_labels": attachments.KIND_LABELS,
        "accept_files": attachments.ACCEPT,
        "human_size": attachments.human_size,
        "max_upload": attachments.human_size(current_app.config["MAX_UPLOAD_BYTES"]),
    }


# ------------------------------------------------------------------ links


@bp.route("/link/<token>", methods=["GET", "POST"])
@limiter.limit(
    _limit("LINK_RATE_LIMIT", "10 per minute;60 per hour"),
    methods=["POST"],
    error_message=RATE_LIMITED,
)
@limiter.limit(
    _limit("LINK_VIEW_RATE_LIMIT", "30 per minute;300 per hour"),
    methods=["GET", "HEAD"],
    error_message=RATE_LIMITED,
)
def link(token: str):
    """GET/HEAD: who the link is for and a Continue button (changes nothing).

    POST: exchange the link for a session, or (``action=fresh``) mail a new link
    to the address on file.
    """
    if len(token) > MAX_TOKEN:
        return _bad_link(token, "invalid")
    if request.method == "POST":
        if forms.LinkForm().wants_fresh_link:
            return _fresh_link(token)
        return _exchange(token)
    try:
        login_link = tokens.resolve_link(token)
    except tokens.InvalidLink as exc:
        return _bad_link(token, exc.reason)
    signed_in_elsewhere = current_user.is_authenticated and (
        not current_user.is_contact or current_user.id != login_link.contact_id
    )
    return render_template(
        "contact/link_confirm.html",
        link=login_link,
        contact=login_link.contact,
        invitation=login_link.invitation,
        masked=drafts.mask_email(login_link.contact.email),
        token=token,
        signed_in_elsewhere=signed_in_elsewhere,
    )


def _exchange(token: str):
    """Use the link once and start the contact's session."""
    try:
        login_link = tokens.resolve_link(token)
        contact = tokens.exchange_link(token)
    except tokens.InvalidLink as exc:
        db.session.rollback()
        if (
            exc.reason == "used"
            and exc.link is not None
            and current_user.is_authenticated
            and current_user.is_contact
            and current_user.id == exc.link.contact_id
        ):
            # A double click: the first click already signed this contact in.
            return redirect(url_for("contact.index"))
        return _bad_link(token, exc.reason)
    target = drafts.landing_url(login_link, tokens.billing_of(token))
    audit.record(contact, "contact.sign_in", contact, after={"link_id": login_link.id})
    db.session.commit()
    session.clear()
    login_user(contact)
    auth.mark_session_started()
    session[auth.SESSION_LINK] = login_link.id  # sign-out ends this session
    flash(f"Welcome, {contact.name}. You are signed in.", "success")
    return redirect(target)


def _bad_link(token: str, reason: str):
    """The friendly page for an unusable link (status 410 for every reason)."""
    contact = None if reason == "invalid" else tokens.contact_for_fresh_link(token)
    return (
        render_template(
            "contact/link_invalid.html",
            reason=reason if contact is not None else "invalid",
            can_resend=contact is not None,
            token=token,
            email_error=None,
        ),
        410,
    )


def _fresh_link(token: str):
    """Send a new link to the address on file of the contact the token names."""
    contact = tokens.contact_for_fresh_link(token) if len(token) <= MAX_TOKEN else None
    if contact is None:
        return _bad_link(token, "invalid")
    sent = drafts.send_fresh_link(contact)
    db.session.commit()
    return render_template(
        "contact/fresh_link_sent.html",
        masked=drafts.mask_email(contact.email),
        sent=sent,
    )


@bp.route("/new-link", methods=["GET", "POST"])
@limiter.limit(
    _limit("NEW_LINK_RATE_LIMIT", "5 per minute;20 per hour"),
    methods=["POST"],
    error_message=RATE_LIMITED,
)
def new_link():
    """Ask for a sign-in link by email; the answer never says if it is known."""
    if request.method == "GET":
        return render_template("contact/new_link.html", email="", email_error=None)
    form = forms.NewLinkForm()
    if not form.check():
        return (
            render_template(
                "contact/new_link.html",
                email=form.email.data,
                email_error=form.messages["email"],
            ),
            422,
        )
    drafts.request_links(form.email.data)
    db.session.commit()
    return render_template("contact/new_link_sent.html", email=form.email.data)


@bp.route("/logout", methods=["POST"])
def logout():
    """End the contact's session (the emailed links of others stay valid)."""
    if current_user.is_authenticated and current_user.is_staff:
        return redirect(url_for("admin.index"))
    if current_user.is_authenticated and current_user.is_contact:
        # Every copy of this session cookie stops working (SPEC §6).
        tokens.end_link_session(current_user.id, session.get(auth.SESSION_LINK))
        db.session.commit()
    logout_user()
    session.clear()
    flash(
        "You are signed out. To come back, use the link in your latest email "
        "or ask for a new one below.",
        "info",
    )
    return redirect(url_for("contact.new_link"))


# ------------------------------------------------------------------ home


@bp.route("/")
def index():
    """The contact's commitments, invitations and billings."""
    return render_template("contact/index.html", home=drafts.home(current_user))


@bp.route(f"/commitments/<{ID}:commitment_id>/billings", methods=["POST"])
def billing_start(commitment_id: int):
    """Start (or open) the billing of the open period for a commitment."""
    commitment = get_own_commitment(commitment_id)
    try:
        billing, created = drafts.start_billing(current_user, commitment)
        db.session.commit()
    except (BillingError, InvitationError) as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("contact.index"))
    if created:
        flash(
            f"{billing.commitment.project.name}: draft "
            f"#{billing.application_number} started. Enter this period's amounts, "
            "save, then submit.",
            "success",
        )
    return redirect(url_for("contact.billing_view", billing_id=billing.id))


@bp.route(f"/invitations/<{ID}:invitation_id>/answer", methods=["POST"])
def invitation_answer(invitation_id: int):
    """Accept or decline an invitation to bill (declining takes an optional reason)."""
    invitation = drafts.get_own_invitation(invitation_id)
    form = forms.InvitationAnswerForm()
    if not form.check():
        flash("Choose accept or decline.", "danger")
        return redirect(url_for("contact.index"))
    try:
        invitations.answer(invitation, current_user, form.accepted, form.reason.data)
        db.session.commit()
    except InvitationError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("contact.index"))
    if form.accepted:
        flash(
            "Thank you: invitation accepted. Start your billing when you are ready.",
            "success",
        )
    else:
        flash("Invitation declined. We have let the billing team know.", "info")
    return redirect(
        url_for("contact.index") + f"#commitment-{invitation.commitment_id}"
    )


# ------------------------------------------------------------------ billing


def _render_billing(billing: Billing, status: int = 200, **extra: Any):
    page = drafts.billing_page(billing, current_user)
    context: dict[str, Any] = {
        "page": page,
        "billing": billing,
        "project": page.project,
        "errors": {},
        "form": None,
        "message": None,
        "upload_error": None,
        "upload_kind": "",
        "comment_error": None,
        "comment_text": "",
        "comment_line": None,
    }
    context.update(extra)
    return render_template("contact/billing.html", **context), status


#: Places outside the lines a saved billing page may open at.
PLACES = {"details"}


def saved_place(raw: str | None, line_ids: Iterable[int]) -> str:
    """The fragment (``#line-<sov id>`` or ``#details``) the page opens at after
    a save, from the form's ``place`` (where the contact was); anything but a
    line of this form or a known place gives none (the top)."""
    place = (raw or "").strip()
    allowed = PLACES | {f"line-{sov_id}" for sov_id in line_ids}
    return f"#{place}" if place in allowed else ""


# A cached billing page runs one statement: its key is read with the contact.
prefetch.register(
    drafts.BILLING_ENDPOINT, drafts.version_subquery, drafts.version_params
)


@bp.route(f"/billings/<{ID}:billing_id>", methods=["GET", "POST"])
def billing_view(billing_id: int):
    """View a billing; while draft or revise & resubmit, save or submit it."""
    if request.method == "GET":
        key = None
        if fragments.enabled():
            version = drafts.own_billing_version(billing_id, current_user)
            if version is None:
                abort(404)
            key = ("contact.billing", *version, *fragments.viewer())
        # The page's rows are read after its key (portal.web.fragments).
        return fragments.page(
            key, lambda: _render_billing(get_own_billing(billing_id))[0]
        )
    billing = get_own_billing(billing_id)
    form = forms.billing_form(billing)()
    form.check()
    if form.action.errors:
        flash("Use the Save draft or Submit button.", "danger")
        return redirect(url_for("contact.billing_view", billing_id=billing.id))
    submit = form.action.data == "submit"
    resubmit = billing.status == BillingStatus.REVISE_AND_RESUBMIT
    message = str(ValidationFailed())
    refused = not form.ok
    overbilled: list[int] = []
    try:
        if not refused:
            overbilled = billings.save_billing(
                billing, current_user, form.billing_input(), form.version.data
            )
            if submit:
                billings.submit_billing(billing, current_user, billing.version)
            db.session.commit()
        else:
            # A refused field: what saving checks first still comes first (a
            # billing that can no longer be edited says so), then the fields.
            billings.check_may_save(billing, current_user)
    except ValidationFailed as exc:
        refused = True
        form.add_errors(exc.errors)
        message = exc.errors.get("lines") or str(exc)
    except StaleBilling as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("contact.billing_view", billing_id=billing.id))
    except BillingError as exc:
        db.session.rollback()
        if billing.status not in EDITABLE_STATUSES:
            flash(str(exc), "danger")
            return redirect(url_for("contact.billing_view", billing_id=billing.id))
        return _render_billing(billing, 422, form=form.values, message=str(exc))
    if refused:
        db.session.rollback()  # nothing of a refused form is written
        return _render_billing(
            billing, 422, errors=form.messages, form=form.values, message=message
        )
    if submit:
        flash(
            f"{drafts.term_for(billing, 'Progress_billing')} "
            f"#{billing.application_number} "
            f"{'resubmitted' if resubmit else 'submitted'}. The billing team has "
            "been notified; you will get an email when it has been reviewed.",
            "success",
        )
    else:
        flash("Draft saved. Submit it when it is complete.", "success")
    if overbilled:
        flash(
            f"{len(overbilled)} line(s) now bill more than their scheduled value. "
            "This project allows it, but the reviewer will see them flagged.",
            "warning",
        )
    # Back where the contact was (the line they were on), not at the top.
    place = "" if submit else saved_place(request.form.get("place"), form.line_names)
    return redirect(url_for("contact.billing_view", billing_id=billing.id) + place)


@bp.route(f"/billings/<{ID}:billing_id>/pdf")
def billing_pdf(billing_id: int):
    """The contact's own billing as a PDF (SPEC §9): as claimed until it is
    decided, then with the approved amounts and the reasons for differences
    (the payment schedule)."""
    from portal.documents import pdf  # fpdf2 costs ~0.4 s to import: on first use

    billing = get_own_billing(billing_id)
    return pdf_response(
        pdf.billing_pdf(billing),
        f"{billing.commitment.number}-billing-{billing.application_number}",
    )


@bp.route(f"/billings/<{ID}:billing_id>/comments", methods=["POST"])
def comment_add(billing_id: int):
    """Add a comment to the billing (or one of its lines)."""
    billing = get_own_billing(billing_id)
    if billing.status == BillingStatus.VOID:
        flash("This billing was voided; it can no longer be commented on.", "danger")
        return redirect(url_for("contact.billing_view", billing_id=billing.id))
    form = forms.CommentForm()
    form.check()
    line = None
    if form.names_line:
        line = next((bl for bl in billing.lines if bl.id == form.line_id.data), None)
        if line is None:
            abort(404)
    try:
        billings.add_comment(billing, current_user, form.body.data, line)
        db.session.commit()
    except ValidationFailed as exc:
        db.session.rollback()
        form.add_errors(exc.errors)
        return _render_billing(
            billing,
            422,
            comment_error=form.messages.get("body") or str(exc),
            comment_text=form.body.data,
            comment_line=line.id if line else None,
        )
    except BillingError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("contact.billing_view", billing_id=billing.id))
    flash("Comment added.", "success")
    return redirect(
        url_for("contact.billing_view", billing_id=billing.id) + "#comments"
    )


# ------------------------------------------------------------------ attachments


@bp.route(f"/billings/<{ID}:billing_id>/attachments", methods=["POST"])
def attachment_upload(billing_id: int):
    """Attach an invoice, lien waiver or other file to the billing."""
    billing = get_own_billing(billing_id)
    form = forms.AttachmentForm()
    kind = form.kind.data
    try:
        attachment = attachments.save_upload(
            billing, request.files.get("file"), kind, current_user
        )
    except UploadError as exc:
        db.session.rollback()
        form.fail("file", exc.message)
        return _render_billing(
            billing, 422, upload_error=form.messages["file"], upload_kind=kind
        )
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        attachments.discard_file(attachment)
        raise
    flash(
        f"{attachments.KIND_LABELS.get(AttachmentKind(kind), 'File')} "
        f"“{attachment.original_name}” attached.",
        "success",
    )
    return redirect(
        url_for("contact.billing_view", billing_id=billing.id) + "#attachments"
    )


@bp.route(f"/attachments/<{ID}:attachment_id>")
def attachment_download(attachment_id: int):
    """Download an attachment of one of the contact's billings."""
    return attachments.send_attachment(get_own_attachment(attachment_id))


@bp.route(f"/attachments/<{ID}:attachment_id>/delete", methods=["POST"])
def attachment_delete(attachment_id: int):
    """Remove a file the contact uploaded, while the billing can still change."""
    attachment = get_own_attachment(attachment_id)
    billing = attachment.billing
    target = url_for("contact.billing_view", billing_id=billing.id) + "#attachments"
    if (
        attachment.uploaded_by_contact_id != current_user.id
        or billing.status not in EDITABLE_STATUSES
    ):
        flash(
            "Only your own files can be removed, and only while the billing is "
            "a draft or being revised.",
            "danger",
        )
        return redirect(target)
    name = attachment.original_name
    attachments.delete_attachment(attachment, current_user)
    db.session.commit()
    attachments.discard_file(attachment)
    flash(f"“{name}” removed.", "success")
    return redirect(target)
