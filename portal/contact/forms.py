"""The contact portal's forms: one :class:`StrictForm` per form that posts.

Fields come from :mod:`portal.web.forms`. The billing form is a grid whose
fields depend on the commitment's lines, so :func:`billing_form` builds its
class with :func:`build`; the page renders it by hand from ``form.values`` and
``form.messages``. Amounts are parsed by the one strict parser (SPEC §5) with
the messages the domain gives; rules that live in the domain (a comment body,
an attachment kind, an invitation's reason) come back from it as field errors
through ``form.add_errors``. Only the fields a contact may set are read:
anything else a form carries (status, approved amounts, commitment id…) is
ignored.
"""

from __future__ import annotations

import re
from typing import ClassVar

from portal.billing import figures
from portal.billing.billings import TEXT_LIMITS, BillingInput
from portal.models import Billing
from portal.validation import parse_id
from portal.web.forms import (
    CleanTextField,
    IdField,
    Invalid,
    PostedTextField,
    StrictAmountField,
    StrictChoiceField,
    StrictField,
    StrictForm,
    build,
)

MAX_EMAIL = 254
# Deliberately loose: one @, something on each side, a dot in the domain, no spaces.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
EMAIL_REQUIRED = "Enter the email address the invitation was sent to."
EMAIL_INVALID = "Enter an email address like name@company.com."
#: The billing form's own message when a field is refused.
CORRECT_FIELDS = "Please correct the highlighted fields."


class ContactEmailField(StrictField):
    """The address a sign-in link is asked for (trimmed; kept, cut, when refused)."""

    fallback = ""

    def parse(self, raw: str) -> str:
        email = raw.strip()
        if not email:
            raise Invalid(EMAIL_REQUIRED)
        if len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email):
            self.fallback = email[:MAX_EMAIL]
            raise Invalid(EMAIL_INVALID)
        return email


class VersionField(StrictField):
    """The billing version the page was loaded with (0 when missing: always stale)."""

    fallback = 0

    def parse(self, raw: str) -> int:
        return parse_id(raw) or 0


# ------------------------------------------------------------------ links


class LinkForm(StrictForm):
    """The link page's buttons: Continue (sign in) or ``fresh`` (email a new link)."""

    action = StrictChoiceField(choices=["continue", "fresh"], default="continue")

    @property
    def wants_fresh_link(self) -> bool:
        return self.action.data == "fresh"


class NewLinkForm(StrictForm):
    """Ask for a sign-in link by email."""

    email = ContactEmailField()


# ------------------------------------------------------------------ home


class InvitationAnswerForm(StrictForm):
    """Accept or decline an invitation; the domain checks the optional reason."""

    decision = StrictChoiceField(choices=["accept", "decline"])
    reason = PostedTextField()

    @property
    def accepted(self) -> bool:
        return self.decision.data == "accept"


# ------------------------------------------------------------------ billing


class BillingForm(StrictForm):
    """The G703 billing form; :func:`billing_form` adds the line fields."""

    action = StrictChoiceField(choices=["save", "submit"])
    version = VersionField()
    vendor_invoice_number = CleanTextField(
        max_len=TEXT_LIMITS["vendor_invoice_number"], required=False
    )
    notes = CleanTextField(max_len=TEXT_LIMITS["notes"], required=False, multiline=True)

    #: sov_line_id → (work, new stored materials, materials installed) field
    #: names, set by billing_form.
    line_names: ClassVar[dict[int, tuple[str, str, str]]] = {}

    def billing_input(self) -> BillingInput:
        """The parsed form as :class:`BillingInput`, for the lines on the page only."""
        lines: dict[int, tuple[str | None, str | None]] = {}
        installed: dict[int, str | None] = {}
        for sov_id, (
            work_name,
            materials_name,
            installed_name,
        ) in self.line_names.items():
            if self[installed_name].raw_data:
                installed[sov_id] = str(self[installed_name].data)
            work, materials = self[work_name], self[materials_name]
            if not (work.raw_data or materials.raw_data):
                continue  # not on the page that was loaded: keep what is stored
            lines[sov_id] = (str(work.data), str(materials.data))
        released = None
        if "retainage_released" in self and self["retainage_released"].raw_data:
            # As typed (checked above): a blank one keeps the stored request.
            released = self["retainage_released"].raw
        return BillingInput(
            lines=lines,
            vendor_invoice_number=self.vendor_invoice_number.data,
            notes=self.notes.data,
            retainage_released=released,
            installed=installed,
        )


def billing_form(billing: Billing) -> type[BillingForm]:
    """The billing form's class for ``billing``: a work, a new stored materials and
    a stored materials installed amount per billable line of its commitment (a
    change order approved since the draft began adds one; ids of anything else in
    the form are never read), and the retainage release when the project allows
    one."""
    fields: dict[str, StrictField] = {}
    names: dict[int, tuple[str, str, str]] = {}
    for info in figures.billable_sov_lines(billing.commitment):
        sov_id = info.line.id
        names[sov_id] = (
            f"line-{sov_id}-work",
            f"line-{sov_id}-materials",
            f"line-{sov_id}-installed",
        )
        fields[names[sov_id][0]] = StrictAmountField(
            required=False, allow_negative=True
        )
        fields[names[sov_id][1]] = StrictAmountField(
            required=False, allow_negative=False
        )
        fields[names[sov_id][2]] = StrictAmountField(
            required=False, allow_negative=False
        )
    if billing.commitment.project.retainage_release_allowed:
        fields["retainage_released"] = StrictAmountField(
            required=False, allow_negative=False
        )
    cls = build(BillingForm, fields)
    cls.line_names = names
    return cls


class CommentForm(StrictForm):
    """A comment on the billing or one of its lines (the domain checks the body)."""

    line_id = IdField(required=False)
    body = PostedTextField()

    @property
    def names_line(self) -> bool:
        """Whether a line was chosen (an unreadable id counts: it names no line)."""
        return bool(self.line_id.errors) or self.line_id.data is not None


class AttachmentForm(StrictForm):
    """The upload form's kind (the file itself comes from ``request.files``);
    the domain checks the kind after it has checked the billing."""

    kind = PostedTextField()
