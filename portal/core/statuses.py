"""Every status and kind the data model knows, as string enums (SPEC §2, §3).

Plain module: the models use these for CHECK constraints, the workflow for its
transition table, the templates for badges.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  #: progress claim administrator
    FINANCE = "finance"  #: exports, ERP settings, API tokens
    VIEWER = "viewer"  #: read-only


# Role groups, defined once (SPEC §1): who may read the back office and the
# finance pages, who may change set-up and billings, who may run exports, and
# who sees the global audit log. Views, the navigation and tests use these.
#: Every staff role: reads every back-office and finance page.
READERS: tuple[str, ...] = (Role.ADMIN.value, Role.FINANCE.value, Role.VIEWER.value)
#: Changes set-up, billings, periods, claims and users.
ADMINS: tuple[str, ...] = (Role.ADMIN.value,)
#: Creates and reverses export batches, edits ERP settings and API tokens.
EXPORTERS: tuple[str, ...] = (Role.FINANCE.value, Role.ADMIN.value)
#: The global audit log.
AUDITORS: tuple[str, ...] = (Role.ADMIN.value, Role.VIEWER.value)


class Currency(StrEnum):
    USD = "USD"
    CAD = "CAD"


class ContractStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"


class CommitmentStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"  #: only approved commitments can be billed
    VOID = "void"


class CommitmentKind(StrEnum):
    SUBCONTRACT = "subcontract"
    PURCHASE_ORDER = "purchase_order"


class ChangeOrderStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  #: only approved change orders count
    VOID = "void"


class PeriodStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class InvitationStatus(StrEnum):
    INVITED = "invited"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class BillingStatus(StrEnum):
    DRAFT = "draft"
    UNDER_REVIEW = "under_review"
    REVISE_AND_RESUBMIT = "revise_and_resubmit"
    PENDING_OWNER_APPROVAL = "pending_owner_approval"
    APPROVED = "approved"
    APPROVED_AS_NOTED = "approved_as_noted"
    VOID = "void"


#: Billings whose approved amounts count as "earlier billings" (SPEC §4).
COUNTED_STATUSES = (
    BillingStatus.APPROVED,
    BillingStatus.APPROVED_AS_NOTED,
    BillingStatus.PENDING_OWNER_APPROVAL,
)
#: Billings that can no longer change.
FINAL_STATUSES = (BillingStatus.APPROVED, BillingStatus.APPROVED_AS_NOTED)
#: Billings the contact (or an admin on their behalf) may edit.
EDITABLE_STATUSES = (BillingStatus.DRAFT, BillingStatus.REVISE_AND_RESUBMIT)


class LineStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REVISE = "revise"


class AttachmentKind(StrEnum):
    INVOICE = "invoice"
    LIEN_WAIVER = "lien_waiver"
    OTHER = "other"


class ClaimStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    VOID = "void"


class ExportFormat(StrEnum):
    SAGE300 = "sage300"
    IIF = "iif"
    CSV = "csv"
    XLSX = "xlsx"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class ActorType(StrEnum):
    USER = "user"
    CONTACT = "contact"
    SYSTEM = "system"


#: The one transition table of the product: per kind of record, (from status,
#: action) → to status. Billings (SPEC §3): ``approve`` resolves to approved or
#: approved_as_noted at run time; ``save`` and ``review`` keep the status.
#: Upstream claims (SPEC §9). Pure data: :func:`next_status` reads it, the
#: workflow modules check moves against it, the tests enumerate it.
TRANSITIONS: dict[str, dict[tuple[str, str], str]] = {
    "billing": {
        (BillingStatus.DRAFT, "save"): BillingStatus.DRAFT,
        (BillingStatus.DRAFT, "submit"): BillingStatus.UNDER_REVIEW,
        (BillingStatus.UNDER_REVIEW, "review"): BillingStatus.UNDER_REVIEW,
        (BillingStatus.UNDER_REVIEW, "approve"): BillingStatus.APPROVED,
        (
            BillingStatus.UNDER_REVIEW,
            "hold_for_owner",
        ): BillingStatus.PENDING_OWNER_APPROVAL,
        (BillingStatus.PENDING_OWNER_APPROVAL, "approve"): BillingStatus.APPROVED,
        (BillingStatus.UNDER_REVIEW, "send_back"): BillingStatus.REVISE_AND_RESUBMIT,
        (
            BillingStatus.REVISE_AND_RESUBMIT,
            "save",
        ): BillingStatus.REVISE_AND_RESUBMIT,
        (BillingStatus.REVISE_AND_RESUBMIT, "resubmit"): BillingStatus.UNDER_REVIEW,
        (BillingStatus.DRAFT, "void"): BillingStatus.VOID,
        (BillingStatus.UNDER_REVIEW, "void"): BillingStatus.VOID,
        (BillingStatus.REVISE_AND_RESUBMIT, "void"): BillingStatus.VOID,
        (BillingStatus.PENDING_OWNER_APPROVAL, "void"): BillingStatus.VOID,
    },
    "claim": {
        (ClaimStatus.DRAFT, "regenerate"): ClaimStatus.DRAFT,
        (ClaimStatus.DRAFT, "adjust"): ClaimStatus.DRAFT,
        (ClaimStatus.DRAFT, "submit"): ClaimStatus.SUBMITTED,
        (ClaimStatus.SUBMITTED, "approve"): ClaimStatus.APPROVED,
        (ClaimStatus.SUBMITTED, "back_to_draft"): ClaimStatus.DRAFT,
        (ClaimStatus.DRAFT, "void"): ClaimStatus.VOID,
        (ClaimStatus.SUBMITTED, "void"): ClaimStatus.VOID,
    },
}


def next_status(kind: str, status: str, action: str) -> str | None:
    """The status ``action`` leads to from ``status`` for a ``kind`` of record
    ("billing" or "claim"), or None when the move is not allowed."""
    return TRANSITIONS[kind].get((status, action))


def values(enum: type[StrEnum]) -> list[str]:
    """The enum's values, in declaration order."""
    return [member.value for member in enum]


#: Badge colour per billing/invitation/dashboard state: one colour per status, and
#: the twelve states a period dashboard shows are told apart by colour alone.
#: Bootstrap's colours, plus rose, orange, purple and teal (``.text-bg-*`` in
#: app.css), all with text at WCAG AA contrast.
BADGE_COLOURS = {
    "no_billing_contact": "rose",
    "not_invited": "light",
    "invited": "info",
    "accepted": "primary",
    "declined": "orange",
    "draft": "secondary",
    "under_review": "warning",
    "revise_and_resubmit": "danger",
    "pending_owner_approval": "purple",
    "approved": "success",
    "approved_as_noted": "teal",
    "void": "dark",
    "pending": "secondary",
    "revise": "danger",
    "submitted": "primary",
    "open": "success",
    "closed": "secondary",
    "upcoming": "light",
    "sent": "success",
    "failed": "danger",
}
