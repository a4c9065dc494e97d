"""Shared pieces of the upstream claims: statuses, errors, compare-and-set."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from portal.billing.billings import BillingError
from portal.concurrency import compare_and_set
from portal.core import money
from portal.core.statuses import COUNTED_STATUSES, ClaimStatus, Role
from portal.core.statuses import TRANSITIONS as STATUS_TRANSITIONS
from portal.models import ClientClaim, User
from portal.validation import clean_text

ZERO = Decimal("0.00")
C = ClaimStatus

#: Downstream billings a claim may take (SPEC §9).
ELIGIBLE_STATUSES = tuple(s.value for s in COUNTED_STATUSES)
#: Claims whose amounts count for later claims (D, line 7, releases).
COUNTING_CLAIM_STATUSES = (C.SUBMITTED.value, C.APPROVED.value)

#: (from status, action) → to status: the claim part of the one table in
#: :mod:`portal.core.statuses`.
TRANSITIONS = STATUS_TRANSITIONS["claim"]

_ACTION_WORDS = {
    "regenerate": "regenerated",
    "adjust": "adjusted",
    "submit": "submitted",
    "approve": "approved",
    "back_to_draft": "put back to draft",
    "void": "voided",
}

TEXT_LIMITS = {"reason": 1000, "void_reason": 2000, "note": 2000}
DESCRIPTION_LIMIT = 300
COST_CODE_LIMIT = 40


class ClaimError(BillingError):
    """A refused claim action, with a message fit for the user."""


class StaleClaim(ClaimError):
    """The claim changed since the page was loaded."""


# ------------------------------------------------------------------ helpers


def allowed(claim: ClientClaim, action: str) -> bool:
    """Whether ``action`` is a legal move from the claim's status."""
    return (C(claim.status), action) in TRANSITIONS


def _check(claim: ClientClaim, action: str, user: User) -> str:
    if not isinstance(user, User) or user.role != Role.ADMIN:
        raise ClaimError("You are not allowed to do that.")
    key = (C(claim.status), action)
    if key not in TRANSITIONS:
        if claim.status in (C.SUBMITTED, C.APPROVED) and action in (
            "regenerate",
            "adjust",
        ):
            raise ClaimError(
                f"This claim is {claim.status}: its amounts are frozen. "
                "Put it back to draft first (only a submitted claim can go back)."
            )
        raise ClaimError(
            f"A claim that is {claim.status} cannot be "
            f"{_ACTION_WORDS.get(action, action)}."
        )
    return TRANSITIONS[key]


def _cas(
    claim: ClientClaim, expected_version: int | None, to_status: str, **values: Any
) -> None:
    """Compare-and-set the status and bump the version, or raise StaleClaim."""
    compare_and_set(
        ClientClaim,
        claim,
        claim.version if expected_version is None else expected_version,
        to_status,
        stale=StaleClaim,
        message=(
            "This claim was changed by someone else meanwhile. "
            "Reload the page to see the latest version, then try again."
        ),
        **values,
    )


def _text(value: str | None) -> str:
    return clean_text(value, multiline=True)


def _cents(raw: object) -> Decimal:
    if raw is None:
        return ZERO
    if isinstance(raw, Decimal):
        return raw.quantize(money.CENT)
    return Decimal(int(raw)).scaleb(-2).quantize(money.CENT)  # type: ignore[call-overload]


def _require_admin(user: User) -> None:
    if not isinstance(user, User) or user.role != Role.ADMIN:
        raise ClaimError("You are not allowed to do that.")
