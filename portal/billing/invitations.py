"""Invite to Bill, reminders and fresh links (SPEC §2, §6, §8).

Each function adds rows (invitation, login link, outbox mail, audit event) and
flushes; the caller commits once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa

from portal import audit, timeutil
from portal.accounts import tokens
from portal.core.statuses import (
    BillingStatus,
    CommitmentStatus,
    InvitationStatus,
    PeriodStatus,
    Role,
)
from portal.extensions import db, rowcount
from portal.locks import lock_rows
from portal.mail.outbox import queue_mail
from portal.models import Billing, BillingPeriod, Commitment, Contact, Invitation, User
from portal.timeutil import aware, utcnow
from portal.validation import clean_text
from portal.web.templating import term
from portal.web.urls import has_endpoint, public_url


class InvitationError(Exception):
    """A refused invitation action, with a message fit for the user."""


@dataclass
class InviteResult:
    """What a bulk invite did."""

    invited: list[Invitation]
    skipped: list[tuple[Commitment, str]]


def invite(
    period: BillingPeriod, commitments: list[Commitment], user: User
) -> InviteResult:
    """Invite every billing contact of each commitment to bill for ``period``.

    A contact already invited for the commitment and period is not invited again
    (exactly one invitation, link and mail per contact); use a reminder instead.
    """
    # Invites for one period are served one after the other (a double click,
    # two admins): the second sees the first's invitations (issue 17).
    lock_rows(BillingPeriod, BillingPeriod.id == period.id)
    db.session.refresh(period)
    if period.status != PeriodStatus.OPEN:
        raise InvitationError("Invitations can only be sent for the open period.")
    rows = list(
        db.session.scalars(
            sa.select(Invitation).where(Invitation.period_id == period.id)
        )
    )
    existing = {
        (inv.commitment_id, inv.contact_id) for inv in rows if inv.revoked_at is None
    }
    #: Withdrawn invitations (contact removed, then added back) are renewed:
    #: their row still holds the (period, commitment, contact) key.
    withdrawn = {
        (inv.commitment_id, inv.contact_id): inv
        for inv in rows
        if inv.revoked_at is not None
    }
    result = InviteResult([], [])
    for commitment in commitments:
        if commitment.project_id != period.project_id:
            result.skipped.append((commitment, "belongs to another project"))
            continue
        if commitment.status != CommitmentStatus.APPROVED:
            result.skipped.append((commitment, "is not approved"))
            continue
        contacts = [c for c in commitment.contacts if c.active]
        if not contacts:
            result.skipped.append((commitment, "has no billing contact"))
            continue
        new = [c for c in contacts if (commitment.id, c.id) not in existing]
        if not new:
            result.skipped.append((commitment, "was already invited"))
            continue
        for contact in new:
            invitation = withdrawn.get((commitment.id, contact.id))
            if invitation is None:
                invitation = Invitation(
                    period_id=period.id,
                    commitment_id=commitment.id,
                    contact_id=contact.id,
                    status=InvitationStatus.INVITED,
                    invited_by_id=user.id,
                )
                db.session.add(invitation)
            else:
                invitation.status = InvitationStatus.INVITED
                invitation.invited_by_id = user.id
                invitation.sent_at = utcnow()
                invitation.answered_at = None
                invitation.decline_reason = ""
                invitation.last_reminded_at = None
                invitation.revoked_at = None
            db.session.flush()
            _mail_link(invitation, "invite", inviter=user.name)
            audit.record(
                user,
                "invitation.send",
                invitation,
                after={"contact": contact.email, "commitment": commitment.number},
            )
            existing.add((commitment.id, contact.id))
            result.invited.append(invitation)
    db.session.flush()
    return result


def _mail_link(invitation: Invitation, kind: str, **extra: object) -> None:
    link, token = tokens.issue_link(invitation.contact, invitation)
    commitment = invitation.commitment
    project = commitment.project
    word = term("progress_billing", project)
    subject = (
        f"{project.name}: {extra.get('inviter', 'We')} invited you to submit your {word}"
        if kind == "invite"
        else f"Reminder: your {word} for {project.name} is due {invitation.period.due_date.isoformat()}"
    )
    queue_mail(
        kind,
        invitation.contact.email,
        subject,
        obj=invitation,
        contact=invitation.contact,
        commitment=commitment,
        project=project,
        period=invitation.period,
        link=tokens.link_url(token),
        expires=link.expires_at,
        **extra,
    )


def _has_submitted(invitation: Invitation) -> bool:
    return bool(
        db.session.scalar(
            sa.select(sa.func.count(Billing.id)).where(
                Billing.commitment_id == invitation.commitment_id,
                Billing.period_id == invitation.period_id,
                Billing.status.notin_([BillingStatus.DRAFT, BillingStatus.VOID]),
            )
        )
    )


def remind(
    invitations: list[Invitation], user: User | None, today: date | None = None
) -> int:
    """Send a reminder for each invitation still without a submitted billing.

    At most one mail per invitation per day: no reminder within a day of the
    invite itself or of the last reminder (issue 14 item 15: one could go out
    seconds after the invite). Declined and revoked ones are skipped. Returns
    how many were sent.
    """
    now = utcnow()
    sent = 0
    for invitation in invitations:
        if (
            invitation.revoked_at is not None
            or invitation.status == InvitationStatus.DECLINED
        ):
            continue
        if (
            invitation.period.status != PeriodStatus.OPEN
            or not invitation.contact.active
        ):
            continue
        last = invitation.last_reminded_at
        if last is not None and now - last < timedelta(days=1):
            continue
        invited = aware(invitation.sent_at)
        if invited is not None and now - invited < timedelta(days=1):
            continue
        if _has_submitted(invitation):
            continue
        # Compare-and-set so two reminder runs at once send one mail.
        claimed = db.session.execute(
            sa.update(Invitation)
            .where(
                Invitation.id == invitation.id,
                Invitation.last_reminded_at.is_(None)
                if last is None
                else Invitation.last_reminded_at == last,
            )
            .values(last_reminded_at=now)
            .execution_options(synchronize_session=False)
        )
        if rowcount(claimed) != 1:
            continue
        db.session.refresh(invitation)
        _mail_link(invitation, "reminder")
        audit.record(user, "invitation.remind", invitation)
        sent += 1
    db.session.flush()
    return sent


def due_for_reminder(within_days: int, today: date | None = None) -> list[Invitation]:
    """Live invitations of open periods due within ``within_days`` days (or overdue)."""
    today = today or timeutil.today()
    return list(
        db.session.scalars(
            sa.select(Invitation)
            .join(BillingPeriod, BillingPeriod.id == Invitation.period_id)
            .where(
                BillingPeriod.status == PeriodStatus.OPEN,
                BillingPeriod.due_date <= today + timedelta(days=within_days),
                Invitation.revoked_at.is_(None),
                Invitation.status != InvitationStatus.DECLINED,
            )
            .order_by(Invitation.id)
        )
    )


def send_fresh_link(contact: Contact) -> None:
    """Mail a new sign-in link to the contact's address on file."""
    if not contact.active:
        return
    link, token = tokens.issue_link(contact)
    queue_mail(
        "new_link",
        contact.email,
        "Your Progress Billings sign-in link",
        obj=contact,
        contact=contact,
        link=tokens.link_url(token),
        expires=link.expires_at,
    )
    audit.record(None, "link.fresh", contact, after={"link_id": link.id})


def answer(
    invitation: Invitation, contact: Contact, accept: bool, reason: str = ""
) -> None:
    """The contact accepts or declines an invitation."""
    if invitation.contact_id != contact.id:
        raise InvitationError("That invitation is not yours.")
    if invitation.revoked_at is not None:
        raise InvitationError("That invitation was withdrawn.")
    reason = clean_text(reason, multiline=True)
    if len(reason) > 1000:
        raise InvitationError("Use at most 1000 characters for the reason.")
    before = invitation.status
    invitation.status = (
        InvitationStatus.ACCEPTED if accept else InvitationStatus.DECLINED
    )
    invitation.decline_reason = "" if accept else reason
    invitation.answered_at = utcnow()
    audit.record(
        contact,
        "invitation.accept" if accept else "invitation.decline",
        invitation,
        before={"status": before},
        after={"status": invitation.status, "reason": invitation.decline_reason},
    )
    if not accept and before != InvitationStatus.DECLINED:
        # The contact is told "we have let the billing team know": do so.
        _notify_admins_of_decline(invitation, contact)
    db.session.flush()


def _notify_admins_of_decline(invitation: Invitation, contact: Contact) -> None:
    """Mail every active admin that ``contact`` declined, with the reason."""
    admins = db.session.scalars(
        sa.select(User).where(User.role == Role.ADMIN, User.active.is_(True))
    ).all()
    commitment = invitation.commitment
    project = commitment.project
    if has_endpoint("admin.period_dashboard"):
        url = public_url("admin.period_dashboard", period_id=invitation.period_id)
    else:
        url = public_url("admin.index")
    for admin in admins:
        queue_mail(
            "invitation_declined",
            admin.email,
            f"{project.name}: {commitment.vendor.name} declined "
            f"{term('invite_to_bill', project)} for period "
            f"#{invitation.period.sequence}",
            obj=invitation,
            invitation=invitation,
            commitment=commitment,
            project=project,
            # not ``contact``: the layout's footer would call the admin one.
            decliner=contact,
            reason=invitation.decline_reason,
            url=url,
        )
