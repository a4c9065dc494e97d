"""The back office's forms: one :class:`StrictForm` per page that posts.

Fields come from :mod:`portal.web.forms` (the strict parsers); views validate, call
the domain, and map its :class:`validation.FieldErrors` back with
``form.add_errors``. Names are the posted field names the templates use.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable
from functools import cache
from typing import Any

from wtforms.validators import StopValidation

from portal.billing.billings import TEXT_LIMITS, LineReview
from portal.billing.periods import MAX_SERIES
from portal.core.statuses import CommitmentKind, Currency, LineStatus, Role
from portal.upstream.common import COST_CODE_LIMIT, DESCRIPTION_LIMIT
from portal.upstream.common import TEXT_LIMITS as CLAIM_LIMITS
from portal.validation import MAX_ID, parse_id
from portal.web.forms import (
    CleanTextField,
    FlagField,
    IdField,
    IdListField,
    PercentField,
    RawTextField,
    StrictAmountField,
    StrictChoiceField,
    StrictDateField,
    StrictEmailField,
    StrictForm,
    StrictIntegerField,
    build,
)

SERIES_KINDS = [
    ("monthly", "Monthly (calendar months)"),
    ("weekly", "Weekly (7 days)"),
    ("custom", "Custom length (days)"),
]

# ------------------------------------------------------------------ set-up

TERMINOLOGY_CHOICES = [
    ("", "Deployment default"),
    ("us", "US: progress billing, retainage, owner invoice"),
    ("au", "Australia: progress claim, retention, HC/Client progress claim"),
    ("ca", "Canada: progress billing, holdback"),
]
KIND_CHOICES = [
    (CommitmentKind.SUBCONTRACT.value, "Subcontract"),
    (CommitmentKind.PURCHASE_ORDER.value, "Purchase order"),
]
CURRENCY_CHOICES = [(c.value, c.value) for c in Currency]


@cache
def time_zones() -> frozenset[str]:
    """The IANA time zone names a project may use."""
    return frozenset(zoneinfo.available_timezones())


# ------------------------------------------------------------------ users


class UserForm(StrictForm):
    """A back-office user's details (edit page)."""

    email = StrictEmailField()
    name = CleanTextField(max_len=120, noun="a name")
    role = StrictChoiceField(choices=[r.value for r in Role])
    active = FlagField()


class NewUserForm(UserForm):
    """A new user: their details and a first password."""

    password = RawTextField(
        max_len=300,
        required_message="Enter a first password (they can change it).",
    )


class PasswordResetForm(StrictForm):
    """An administrator sets a user's password (the domain checks its strength)."""

    password = RawTextField(max_len=300)


# ---------------------------------------------------------------- periods


class PeriodDatesForm(StrictForm):
    """A period's dates (edit page); the billing date defaults to the end date."""

    start_date = StrictDateField()
    end_date = StrictDateField()
    due_date = StrictDateField()
    billing_date = StrictDateField(required=False)


class NewPeriodForm(PeriodDatesForm):
    """One new period for a project, opened at once or not."""

    project_id = IdField(message="Choose a project.")
    open_now = FlagField()


class PeriodSeriesForm(StrictForm):
    """A monthly, weekly or custom-length series of periods."""

    project_id = IdField(message="Choose a project.")
    kind = StrictChoiceField(choices=[k for k, _ in SERIES_KINDS])
    start_date = StrictDateField()
    count = StrictIntegerField(minimum=1, maximum=MAX_SERIES)
    length_days = StrictIntegerField(minimum=1, maximum=366)
    due_days_before_end = StrictIntegerField(minimum=0, maximum=365, default=0)
    open_now = FlagField()

    def validate(self, extra_validators=None) -> bool:
        # The length only counts for a custom series.
        self.length_days.skipped = self.kind.data != "custom"
        return super().validate(extra_validators)


class BulkForm(StrictForm):
    """Invite to Bill or remind the selected commitments of a period."""

    action = StrictChoiceField(choices=["invite", "remind"], default="")
    commitment_ids = IdListField()


# ------------------------------------------------------- projects, vendors


class ProjectForm(StrictForm):
    """A project's details, rules and ERP references."""

    number = CleanTextField(max_len=40, noun="a project number")
    name = CleanTextField(max_len=200, noun="a name")
    currency = StrictChoiceField(choices=[c.value for c in Currency])
    address = CleanTextField(max_len=500, required=False, multiline=True)
    time_zone = CleanTextField(max_len=64, noun="a time zone")
    overbilling_allowed = FlagField()
    late_submissions_allowed = FlagField()
    retainage_release_allowed = FlagField()
    default_work_retainage_pct = PercentField()
    default_materials_retainage_pct = PercentField()
    terminology = StrictChoiceField(choices=[c for c, _ in TERMINOLOGY_CHOICES])
    erp_job_number = CleanTextField(max_len=40, required=False)
    qb_customer_job = CleanTextField(max_len=200, required=False)

    def validate_time_zone(self, field: CleanTextField) -> None:
        if field.data and field.data not in time_zones():
            raise StopValidation("Enter a time zone like America/New_York.")


class VendorForm(StrictForm):
    """A vendor's name, address and ERP vendor code."""

    name = CleanTextField(max_len=200, noun="a name")
    address = CleanTextField(max_len=500, required=False, multiline=True)
    erp_vendor_code = CleanTextField(max_len=40, required=False)


class ContactForm(StrictForm):
    """A vendor's contact."""

    name = CleanTextField(max_len=120, noun="a name")
    email = StrictEmailField()
    phone = CleanTextField(max_len=40, required=False)


class ActiveForm(StrictForm):
    """The (de)activate button."""

    active = FlagField()


# ------------------------------------------- commitments, SOV, change orders


class CommitmentForm(StrictForm):
    """A commitment (subcontract or purchase order) on a project."""

    vendor_id = IdField()
    kind = StrictChoiceField(choices=[k for k, _ in KIND_CHOICES])
    number = CleanTextField(max_len=40, noun="a number")
    title = CleanTextField(max_len=200, noun="a title")
    work_retainage_pct = PercentField()
    materials_retainage_pct = PercentField()


class StatusForm(StrictForm):
    """A status button (the view gives the statuses it accepts)."""

    status = StrictChoiceField(choices=(), default="")

    def __init__(self, statuses: list[str], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.status.choices = statuses
        self.status.process_formdata(self.status.raw_data or [])


class ContactPickForm(StrictForm):
    """Add one of the vendor's contacts as a billing contact."""

    contact_id = IdField()


class SovLineForm(StrictForm):
    """A commitment's SOV line."""

    line_number = StrictIntegerField(minimum=1, maximum=999999)
    cost_code = CleanTextField(max_len=40, noun="a cost code")
    description = CleanTextField(max_len=300, noun="a description")
    original_value = StrictAmountField()


class ChangeOrderForm(StrictForm):
    """A new pending change order."""

    co_number = CleanTextField(max_len=40, noun="a change order number")
    co_title = CleanTextField(max_len=200, noun="a title")


class ChangeOrderItemForm(StrictForm):
    """A change: an amount on an existing SOV line, or a new line."""

    mode = StrictChoiceField(choices=["existing", "new"], default="existing")
    amount = StrictAmountField(allow_negative=True)
    sov_line_id = IdField()
    cost_code = CleanTextField(max_len=40, noun="a cost code")
    description = CleanTextField(max_len=300, noun="a description")

    def validate(self, extra_validators=None) -> bool:
        new = self.mode.data == "new"
        self.sov_line_id.skipped = new
        self.cost_code.skipped = self.description.skipped = not new
        return super().validate(extra_validators)


# -------------------------------------------------------- client contracts


class ClientContractForm(StrictForm):
    """The contract with the client (owner)."""

    number = CleanTextField(max_len=40, noun="a number")
    title = CleanTextField(max_len=200, noun="a title")
    client_name = CleanTextField(max_len=200, noun="the client's name")
    work_retainage_pct = PercentField()
    materials_retainage_pct = PercentField()
    markup_pct = PercentField()


class ClientLineForm(StrictForm):
    """A client contract's SOV line."""

    line_number = StrictIntegerField(minimum=1, maximum=999999)
    cost_code = CleanTextField(max_len=40, noun="a cost code")
    description = CleanTextField(max_len=300, noun="a description")
    scheduled_value = StrictAmountField()


# ------------------------------------------------------------------ review

REVIEW_DECISIONS = ["save", "approve", "hold", "send_back"]


class VersionForm(StrictForm):
    """A billing action: the billing version the page was loaded with."""

    version = StrictIntegerField(minimum=1, maximum=MAX_ID)


class DecisionForm(VersionForm):
    """Approve, hold, send back or save the review, with a billing comment."""

    decision = StrictChoiceField(choices=REVIEW_DECISIONS, default="save")
    comment = CleanTextField(
        max_len=TEXT_LIMITS["comment"], required=False, multiline=True
    )


class BillingNewForm(StrictForm):
    """Start a billing on a contact's behalf."""

    commitment_id = IdField()
    period_id = IdField()


class BillingCommentForm(StrictForm):
    """A billing-level comment, or one on a line (the domain checks the body)."""

    line_id = IdField(required=False)


class BillingVoidForm(VersionForm):
    """Void a billing: the reason (the domain asks for one and checks its length)."""

    reason = CleanTextField(
        max_len=TEXT_LIMITS["reason"], required=False, multiline=True
    )


class BillingCommentBodyForm(BillingCommentForm):
    """A comment's text (the domain asks for one and checks its length)."""

    body = CleanTextField(
        max_len=TEXT_LIMITS["comment"], required=False, multiline=True
    )


UNKNOWN_LINE = "Unknown line in the form. Reload the page."


class GridForm(StrictForm):
    """A G703 grid: fields ``line-<id>-<column>`` made by :func:`build` per line.

    ``line_ids`` are the lines the grid has fields for; ``columns`` their columns.
    A line counts only when the page posted it (see :meth:`posted`).
    """

    columns: tuple[str, ...] = ()
    line_ids: tuple[int, ...] = ()

    @staticmethod
    def column_fields() -> dict[str, Any]:
        """Column name → a function making that column's field for one line."""
        return {}

    def line(self, line_id: int, column: str) -> Any:
        return self._fields[f"line-{line_id}-{column}"]

    def posted(self, line_id: int, *columns: str) -> bool:
        """Whether the page posted any of the line's ``columns`` (all by default)."""
        return any(self.line(line_id, c).raw_data for c in columns or self.columns)

    def posted_amounts(self) -> dict[int, tuple[str, str]]:
        """``{line_id: (work, materials)}`` of the lines that posted either, as typed."""
        return {
            n: (self.line(n, "work").raw, self.line(n, "materials").raw)
            for n in self.line_ids
            if self.posted(n, "work", "materials")
        }

    def posted_installed(self) -> dict[int, str]:
        """``{line_id: installed}`` of the lines that posted one, as typed."""
        return {
            n: self.line(n, "installed").raw
            for n in self.line_ids
            if self.posted(n, "installed")
        }

    def unknown_line(self) -> bool:
        """Whether the page posted a ``line-<id>-<column>`` of a line not offered."""
        pattern = re.compile(rf"line-([1-9][0-9]{{0,17}})-({'|'.join(self.columns)})")
        known = {str(n) for n in self.line_ids}
        return any(
            (m := pattern.fullmatch(key)) is not None and m[1] not in known
            for key in self.values
        )

    def skip_unposted(self, *columns: str) -> None:
        for line_id in self.line_ids:
            if not self.posted(line_id, *columns):
                for column in self.columns:
                    self.line(line_id, column).skipped = True

    def first_error_per_line(self) -> None:
        """Keep one message per line, the first column's (as the domain reports)."""
        for line_id in self.line_ids:
            seen = False
            for column in self.columns:
                field = self.line(line_id, column)
                if field.errors and seen:
                    field.errors = []
                seen = seen or bool(field.errors)


def grid_class(
    base: type[GridForm], line_ids: Iterable[int], **extra: Any
) -> type[GridForm]:
    """``base`` with the columns of every line in ``line_ids`` (``base.column_fields``)."""
    ids = tuple(line_ids)
    fields: dict[str, Any] = {}
    for line_id in ids:
        for column, make in base.column_fields().items():
            fields[f"line-{line_id}-{column}"] = make()
    fields.update(extra)
    cls = build(base, fields)
    cls.line_ids = ids
    return cls


class BillingEditForm(VersionForm, GridForm):
    """The G703 entry grid on a contact's behalf (work, new stored materials and
    stored materials installed per SOV line)."""

    columns = ("work", "materials", "installed")
    vendor_invoice_number = CleanTextField(
        max_len=TEXT_LIMITS["vendor_invoice_number"], required=False
    )
    notes = CleanTextField(max_len=TEXT_LIMITS["notes"], required=False, multiline=True)
    retainage_released = StrictAmountField(required=False)
    action = StrictChoiceField(choices=["save", "submit"], default="save")

    @staticmethod
    def column_fields() -> dict[str, Any]:
        return {
            "work": lambda: StrictAmountField(required=False, allow_negative=True),
            "materials": lambda: StrictAmountField(required=False),
            "installed": lambda: StrictAmountField(required=False),
        }

    releasing = True

    def validate(self, extra_validators=None) -> bool:
        self.skip_unposted()
        self.version.skipped = True  # the view reports a missing version first
        self.action.skipped = True  # any other button saves, as it always did
        self.retainage_released.skipped = not self.releasing
        super().validate(extra_validators)
        if self.unknown_line():  # the domain refuses a line of another billing
            self.fail("lines", UNKNOWN_LINE)
        return self.ok


REVISE_MESSAGE = "Say what needs revising."


class ReviewLinesForm(GridForm):
    """The review grid: approved amounts, a status and a comment per billing line.

    A line counts when its status was posted; each line gets at most one message.
    """

    columns = ("work", "materials", "installed", "status", "comment")

    @staticmethod
    def column_fields() -> dict[str, Any]:
        return {
            "work": lambda: StrictAmountField(required=False, allow_negative=True),
            "materials": lambda: StrictAmountField(required=False),
            "installed": lambda: StrictAmountField(required=False),
            "status": lambda: StrictChoiceField(choices=[s.value for s in LineStatus]),
            "comment": lambda: CleanTextField(
                max_len=TEXT_LIMITS["comment"], required=False, multiline=True
            ),
        }

    def validate(self, extra_validators=None) -> bool:
        self.skip_unposted("status")
        super().validate(extra_validators)
        for line_id in self.line_ids:
            status, comment = (
                self.line(line_id, "status"),
                self.line(line_id, "comment"),
            )
            if status.errors:
                status.errors = ["Choose approve or revise."]
            elif (
                not status.skipped
                and status.data == LineStatus.REVISE
                and not comment.errors
                and not comment.data
            ):
                comment.errors = [REVISE_MESSAGE]
        self.first_error_per_line()
        return self.ok

    def reviews(self) -> dict[int, LineReview]:
        """The posted lines' reviews, as typed (the domain parses them again)."""
        return {
            n: LineReview(
                approved_work=self.line(n, "work").raw,
                approved_materials=self.line(n, "materials").raw,
                status=self.line(n, "status").raw,
                comment=self.line(n, "comment").raw,
                approved_installed=(
                    self.line(n, "installed").raw
                    if self.posted(n, "installed")
                    else None
                ),
            )
            for n in self.line_ids
            if self.posted(n, "status")
        }


# ------------------------------------------------------------------ claims


class ClaimForm(StrictForm):
    """A claim action: the claim version the page was loaded with.

    A missing or odd version reads as 0, which the domain refuses as stale.
    """

    version = StrictIntegerField(minimum=1, maximum=MAX_ID, required=False)

    def validate(self, extra_validators=None) -> bool:
        self.version.skipped = True
        return super().validate(extra_validators)

    @property
    def expected_version(self) -> int:
        return self.version.data or 0


class ClaimGenerateForm(StrictForm):
    """Generate a draft claim (the view words the messages with the terminology)."""

    contract_id = IdField()
    period_id = IdField()


class ClaimMapForm(ClaimForm):
    """Map an unmapped cost code to a line of the client contract."""

    cost_code = CleanTextField(max_len=COST_CODE_LIMIT, multiline=True)
    client_sov_line_id = IdField(message="Choose a line of this client contract.")

    def validate(self, extra_validators=None) -> bool:
        super().validate(extra_validators)
        if self.cost_code.errors:
            self.cost_code.errors = ["Choose a cost code to map."]
        return self.ok


class ClaimAddLineForm(ClaimForm):
    """Add a client-contract line for an unmapped cost code."""

    cost_code = CleanTextField(
        max_len=COST_CODE_LIMIT, noun="a cost code", multiline=True
    )
    description = CleanTextField(
        max_len=DESCRIPTION_LIMIT, noun="a description", multiline=True
    )
    scheduled_value = StrictAmountField(allow_negative=False)


class ClaimAdjustForm(ClaimForm):
    """A claim line's hand adjustment; a reason is needed when it is not zero."""

    work = StrictAmountField(required=False, allow_negative=True)
    materials = StrictAmountField(required=False, allow_negative=True)
    reason = CleanTextField(
        max_len=CLAIM_LIMITS["reason"], required=False, multiline=True
    )

    def validate_reason(self, field: CleanTextField) -> None:
        if not field.data and (self.work.data or self.materials.data):
            raise StopValidation(
                "Say why (for example: self-performed work, a correction)."
            )


class ClaimReleaseForm(ClaimForm):
    """The retainage a draft claim asks the client to release."""

    retainage_released = StrictAmountField(required=False, allow_negative=False)


class ClaimSubmitForm(ClaimForm):
    """Submit a claim, accepting its unmapped amounts or not."""

    accept_unmapped = FlagField()


class ClaimBackToDraftForm(ClaimForm):
    """Put a submitted claim back to draft, with an optional reason."""

    reason = CleanTextField(
        max_len=CLAIM_LIMITS["note"], required=False, multiline=True
    )


class ClaimVoidForm(ClaimForm):
    """Void a claim: a reason is required."""

    reason = CleanTextField(
        max_len=CLAIM_LIMITS["void_reason"], required=False, multiline=True
    )

    def validate_reason(self, field: CleanTextField) -> None:
        if not field.data:
            raise StopValidation("Give a reason for voiding.")


class ClaimApproveForm(ClaimForm, GridForm):
    """The client's amounts per claim line, the held billings to approve, a note.

    Lines the page did not post are approved as claimed.
    """

    columns = ("work", "materials")
    note = CleanTextField(max_len=CLAIM_LIMITS["note"], required=False, multiline=True)
    billing_ids: tuple[int, ...] = ()

    @staticmethod
    def column_fields() -> dict[str, Any]:
        return {
            "work": lambda: StrictAmountField(allow_negative=True),
            "materials": lambda: StrictAmountField(),
        }

    def validate(self, extra_validators=None) -> bool:
        self.skip_unposted()
        super().validate(extra_validators)
        return self.ok

    def checked_billings(self) -> list[int]:
        """The ticked ``billing-<id>`` boxes (ids the page did not offer included,
        so the domain refuses them)."""
        return [
            number
            for key in self.values
            if key.startswith("billing-")
            and self.values.get(key) == "1"
            and (number := parse_id(key.removeprefix("billing-"))) is not None
        ]


def claim_approve_form(line_ids: Iterable[int]) -> ClaimApproveForm:
    """The approve grid for a claim's lines, read from the posted form."""
    return grid_class(ClaimApproveForm, line_ids)()


def billing_edit_form(sov_line_ids: Iterable[int], releasing: bool) -> BillingEditForm:
    """The entry grid for a billing's SOV lines, read from the posted form."""
    cls = grid_class(BillingEditForm, sov_line_ids)
    cls.releasing = releasing
    return cls()


def review_lines_form(line_ids: Iterable[int]) -> ReviewLinesForm:
    """The review grid for a billing's lines, read from the posted form."""
    return grid_class(ReviewLinesForm, line_ids)()


class BackForm(StrictForm):
    """Where a small POST returns to: the page's ``back`` field."""

    back = CleanTextField(max_len=2000, required=False)

    @property
    def target(self) -> str:
        """The cleaned ``back`` text ("" when missing or too long)."""
        self.validate()
        return self.back.data or ""


# ---------------------------------------------------- sign-in and account


class LoginForm(StrictForm):
    """Email and password (the password is kept exactly as typed)."""

    email = CleanTextField(max_len=254, noun="your email address")
    password = RawTextField(max_len=256, required_message="Enter your password.")


class AccountPasswordForm(StrictForm):
    """Change your own password (the domain checks and compares them)."""

    current_password = RawTextField(max_len=256)
    new_password = RawTextField(max_len=300)
    confirm_password = RawTextField(max_len=300)


class AuditFilterForm(StrictForm):
    """The audit log's date filters (read from the query string)."""

    since = StrictDateField(required=False)
    until = StrictDateField(required=False)
