"""The back office's forms: one :class:`StrictForm` per page that posts.

Fields come from :mod:`portal.web.forms` (the strict parsers); views validate, call
the domain, and map its :class:`validation.FieldErrors` back with
``form.add_errors``. Names are the posted field names the templates use.
"""

from __future__ import annotations

import zoneinfo
from functools import cache

from wtforms.validators import StopValidation

from portal.billing.billings import TEXT_LIMITS
from portal.billing.periods import MAX_SERIES
from portal.core.statuses import CommitmentKind, Currency, Role
from portal.validation import MAX_ID
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
