"""The form layer: a :class:`FlaskForm` base and the strict fields every form uses.

Each blueprint declares its forms (``admin/forms.py``, ``exports/forms.py``,
``contact/forms.py``) as subclasses of :class:`StrictForm` built from the fields
below. The fields read the posted text strictly (SPEC §5) and give one message
per field: amounts and percentages go through :mod:`portal.amounts`' one
parser, ids through :func:`validation.parse_id`, text through
:func:`validation.clean_text`.

Pages render by hand from ``form.values`` (the posted text, so a refused form
comes back as typed) and ``form.messages`` (field name → message), which is
what the ``templates/admin/_forms.html`` macros read. Domain code never sees a
form: it raises :class:`validation.FieldErrors`, and :meth:`StrictForm.add_errors`
puts those beside the fields.

CSRF: :class:`flask_wtf.csrf.CSRFProtect` checks every POST app-wide before a
view runs, so these forms turn their own token check off (it would be a second
check of the same token).

This module is part of the web layer: domain modules (``portal/*.py`` outside the
blueprints) must not import it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from flask import request
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import Field
from wtforms.validators import StopValidation

from portal.core.amounts import AmountError, parse_amount, parse_percent
from portal.validation import clean_text, parse_id

ZERO = Decimal("0.00")
CHOOSE = "Choose one of the options."
_EMAIL = re.compile(r"[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+", re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_INTEGER = re.compile(r"-?[0-9]{1,9}", re.ASCII)
_FALSE = frozenset({"", "0", "false", "off", "no"})


class Invalid(ValueError):
    """A posted value that does not parse; the message is shown beside the field."""


class StrictField(Field):
    """A field read from the first posted value and parsed by :meth:`parse`.

    Parsing happens once, when the form is built; :meth:`pre_validate` then
    reports its message (so each field has at most one). ``skipped`` leaves a
    field out of validation (a field that only counts for some choices).
    """

    #: The value when the field is blank or invalid.
    fallback: Any = None

    def __init__(
        self, label: str | None = None, validators=None, **kwargs: Any
    ) -> None:
        super().__init__(label, validators, **kwargs)
        self.raw = ""
        self.skipped = False
        self._problem: str | None = None

    def process_formdata(self, valuelist: list[Any]) -> None:
        first = valuelist[0] if valuelist else None
        self.raw = first if isinstance(first, str) else ""
        try:
            self.data = self.parse(self.raw)
            self._problem = None
        except Invalid as exc:
            self.data = self.fallback
            self._problem = str(exc)

    def parse(self, raw: str) -> Any:  # pragma: no cover - every field overrides it
        raise NotImplementedError

    def pre_validate(self, form: Any) -> None:
        if self._problem is not None:
            raise StopValidation(self._problem)

    def validate(self, form: Any, extra_validators: Iterable[Any] = ()) -> bool:
        if self.skipped:
            self.errors: list[str] = []
            return True
        return super().validate(form, extra_validators)

    def _value(self) -> str:
        return self.raw


class CleanTextField(StrictField):
    """Text cleaned by :func:`validation.clean_text`: required, at most ``max_len``."""

    fallback = ""

    def __init__(
        self,
        label: str | None = None,
        *,
        max_len: int,
        required: bool = True,
        multiline: bool = False,
        noun: str = "this field",
        **kwargs: Any,
    ) -> None:
        super().__init__(label, **kwargs)
        self.max_len = max_len
        self.required = required
        self.multiline = multiline
        self.noun = noun

    def parse(self, raw: str) -> str:
        value = clean_text(raw, multiline=self.multiline)
        if self.required and not value:
            raise Invalid(f"Enter {self.noun}.")
        if len(value) > self.max_len:
            raise Invalid(f"Use at most {self.max_len} characters.")
        return value


class RawTextField(StrictField):
    """Text kept exactly as typed (a password), cut at ``max_len``."""

    fallback = ""

    def __init__(
        self,
        label: str | None = None,
        *,
        max_len: int,
        required_message: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(label, **kwargs)
        self.max_len = max_len
        self.required_message = required_message

    def parse(self, raw: str) -> str:
        value = raw[: self.max_len]
        if not value and self.required_message:
            raise Invalid(self.required_message)
        return value


class PostedTextField(StrictField):
    """Text handed unchanged to a domain function that cleans and checks it.

    For fields whose rules (and messages) live in the domain, such as a comment
    body or an ERP code: the domain raises :class:`validation.FieldErrors` (or
    its own field errors) and :meth:`StrictForm.add_errors` puts them beside
    the field. ``present`` tells whether the field was posted at all.
    """

    fallback = ""

    def parse(self, raw: str) -> str:
        return raw

    @property
    def present(self) -> bool:
        return bool(getattr(self, "raw_data", None))


class StrictEmailField(StrictField):
    """An email address (one @, no spaces), at most 254 characters."""

    fallback = ""

    def __init__(
        self, label: str | None = None, *, required: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(label, **kwargs)
        self.required = required

    def parse(self, raw: str) -> str:
        value = clean_text(raw)
        if not value:
            if self.required:
                raise Invalid("Enter an email address.")
            return ""
        if len(value) > 254:
            raise Invalid("Use at most 254 characters.")
        if not _EMAIL.fullmatch(value):
            raise Invalid("Enter a valid email address, like name@example.com.")
        return value


class StrictChoiceField(StrictField):
    """One of ``choices`` (values; a callable is asked when the form is built).

    Blank gives ``default`` when one is given; anything else not offered is refused.
    """

    def __init__(
        self,
        label: str | None = None,
        *,
        choices: Iterable[str] | Callable[[], Iterable[str]],
        default: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(label, **kwargs)
        self.choices = choices
        self.choice_default = default

    def allowed(self) -> list[str]:
        return list(self.choices() if callable(self.choices) else self.choices)

    def parse(self, raw: str) -> str:
        allowed = self.allowed()
        value = clean_text(raw)
        if not value and self.choice_default is not None:
            return self.choice_default
        if value not in allowed:
            self.fallback = (
                self.choice_default
                if self.choice_default is not None
                else (allowed[0] if allowed else "")
            )
            raise Invalid(CHOOSE)
        return value


class FlagField(StrictField):
    """A checkbox: present and not "0", "false", "off" or "no"."""

    fallback = False

    def process_formdata(self, valuelist: list[Any]) -> None:
        super().process_formdata(valuelist)
        if not valuelist:
            self.data = False

    def parse(self, raw: str) -> bool:
        return raw.strip().lower() not in _FALSE


class StrictDateField(StrictField):
    """An ISO date (YYYY-MM-DD) as an HTML date input sends it, years 1900-2200."""

    def __init__(
        self, label: str | None = None, *, required: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(label, **kwargs)
        self.required = required

    def parse(self, raw: str) -> date | None:
        value = clean_text(raw)
        if not value:
            if self.required:
                raise Invalid("Enter a date.")
            return None
        try:
            if not _DATE.fullmatch(value):
                raise ValueError(value)
            day = date.fromisoformat(value)
        except ValueError:
            raise Invalid("Enter a date as YYYY-MM-DD.") from None
        if not 1900 <= day.year <= 2200:
            raise Invalid("Enter a date between the years 1900 and 2200.")
        return day


class StrictIntegerField(StrictField):
    """A whole number from ``minimum`` to ``maximum`` (``default`` when blank)."""

    def __init__(
        self,
        label: str | None = None,
        *,
        minimum: int,
        maximum: int,
        required: bool = True,
        default: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(label, **kwargs)
        self.minimum = minimum
        self.maximum = maximum
        self.required = required
        self.fallback = default

    def parse(self, raw: str) -> int | None:
        value = clean_text(raw)
        if not value:
            if self.required and self.fallback is None:
                raise Invalid("Enter a number.")
            return self.fallback
        if not _INTEGER.fullmatch(value):
            raise Invalid("Enter a whole number.")
        number = int(value)
        if not self.minimum <= number <= self.maximum:
            raise Invalid(f"Enter a number from {self.minimum} to {self.maximum}.")
        return number


class IdField(StrictField):
    """A database id from a select box (:func:`validation.parse_id`)."""

    def __init__(
        self,
        label: str | None = None,
        *,
        required: bool = True,
        message: str = CHOOSE,
        **kwargs: Any,
    ) -> None:
        super().__init__(label, **kwargs)
        self.required = required
        self.message = message

    def parse(self, raw: str) -> int | None:
        if not clean_text(raw):
            if self.required:
                raise Invalid(self.message)
            return None
        number = parse_id(clean_text(raw))
        if number is None:
            raise Invalid(self.message)
        return number


class IdListField(StrictField):
    """Checkbox ids (the name repeated): the well-formed ones, in order, unique.

    ``bad`` tells whether any posted value was not an id (a form may refuse that).
    """

    def __init__(self, label: str | None = None, **kwargs: Any) -> None:
        super().__init__(label, **kwargs)
        self.data = []
        self.bad = False

    def process_formdata(self, valuelist: list[Any]) -> None:
        out: list[int] = []
        self.bad = False
        for raw in valuelist:
            number = parse_id(raw)
            if number is None:
                self.bad = True
            elif number not in out:
                out.append(number)
        self.data = out
        self.raw = ",".join(str(n) for n in out)

    def process_data(self, value: Any) -> None:
        self.data = list(value or [])


class PercentField(StrictField):
    """A percentage 0-100 with up to 4 decimals (:func:`amounts.parse_percent`)."""

    fallback = Decimal("0.0000")

    def __init__(
        self, label: str | None = None, *, required: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(label, **kwargs)
        self.required = required

    def parse(self, raw: str) -> Decimal:
        try:
            return parse_percent(raw, allow_blank=not self.required)
        except AmountError as exc:
            raise Invalid(str(exc)) from None


class StrictAmountField(StrictField):
    """An amount, read by the one strict parser :func:`amounts.parse_amount`."""

    fallback = ZERO

    def __init__(
        self,
        label: str | None = None,
        *,
        required: bool = True,
        allow_negative: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(label, **kwargs)
        self.required = required
        self.allow_negative = allow_negative

    def parse(self, raw: str) -> Decimal:
        try:
            return parse_amount(
                raw, allow_blank=not self.required, allow_negative=self.allow_negative
            )
        except AmountError as exc:
            raise Invalid(str(exc)) from None


class StrictForm(FlaskForm):
    """A form read from the posted data, with one message per field.

    ``StrictForm()`` reads ``request.form`` on a POST; ``StrictForm(formdata=…)``
    reads any mapping (query arguments). :meth:`validate` runs every field;
    :meth:`fail` and :meth:`add_errors` put view and domain rules beside them.
    """

    class Meta:
        csrf = False  # CSRFProtect already checked the token app-wide

    def __init__(self, formdata: Any = None, **kwargs: Any) -> None:
        if formdata is not None and not hasattr(formdata, "getlist"):
            formdata = MultiDict(
                {k: v for k, v in formdata.items() if isinstance(v, str)}
            )
        if formdata is None and request.method not in ("GET", "HEAD"):
            # Always read the posted form, even an empty one (Flask-WTF would
            # skip an empty body, leaving required fields unchecked).
            formdata = request.form
        super().__init__(formdata=formdata, **kwargs)
        self._posted = formdata
        self._other: dict[str, str] = {}

    @property
    def values(self) -> Mapping[str, Any]:
        """The posted text by field name, for the page to show again."""
        return self._posted if self._posted is not None else MultiDict()

    @property
    def messages(self) -> dict[str, str]:
        """Field name → the message to show beside it (domain errors included)."""
        out = {name: f.errors[-1] for name, f in self._fields.items() if f.errors}
        out.update(self._other)
        return out

    @property
    def ok(self) -> bool:
        return not self.messages

    def fail(self, name: str, message: str) -> None:
        """Put ``message`` beside field ``name`` (replacing what was there)."""
        field = self._fields.get(name)
        if field is None:
            self._other[name] = message
        else:
            field.errors = [message]

    def add_errors(self, errors: Mapping[str, str]) -> None:
        """Map a :class:`validation.FieldErrors`' messages onto the fields."""
        for name, message in errors.items():
            self.fail(name, message)

    def check(self) -> bool:
        """Validate every field; True when all are valid."""
        self.validate()
        return self.ok


def build(base: type[StrictForm], fields: Mapping[str, Field]) -> type[StrictForm]:
    """A form class with ``fields`` added (a grid whose fields depend on the data)."""
    return type(base.__name__, (base,), dict(fields))
