"""Tests of portal.web.forms: the strict fields every form is built from.

Each field is shown accepting what it should and refusing, with its message,
what it should not; then the form's own rules (one message per field, domain
errors mapped beside fields, skipped fields) and the layering rule.
"""

from __future__ import annotations

import ast
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.datastructures import MultiDict

from portal.validation import MAX_ID, parse_id
from portal.web import forms as f


@pytest.fixture(scope="module")
def flask_app() -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="forms-test", TESTING=True)
    return app


def read(flask_app: Flask, field, data) -> tuple[object, str | None]:
    """(value, message) of one field named ``x`` given the posted ``data``."""

    class One(f.StrictForm):
        x = field

    with flask_app.test_request_context(method="POST", data=data):
        form = One()
        form.validate()
        return form.x.data, form.messages.get("x")


@pytest.mark.parametrize(
    ("raw", "value", "message"),
    [
        ("  Ada\x00 ", "Ada", None),
        ("a\nb\tc", "a b c", None),
        ("", "", "Enter a name."),
        ("\x01\x02 ", "", "Enter a name."),
        ("abcdef", "", "Use at most 5 characters."),
    ],
)
def test_clean_text(flask_app, raw, value, message) -> None:
    field = f.CleanTextField(max_len=5, noun="a name")
    assert read(flask_app, field, {"x": raw}) == (value, message)


def test_clean_text_optional_and_multiline(flask_app) -> None:
    assert read(flask_app, f.CleanTextField(max_len=9, required=False), {}) == (
        "",
        None,
    )
    field = f.CleanTextField(max_len=9, multiline=True)
    assert read(flask_app, field, {"x": "a\nb"}) == ("a\nb", None)


@pytest.mark.parametrize(
    ("raw", "value", "message"),
    [
        ("1,234.50", Decimal("1234.50"), None),
        ("$0.5", Decimal("0.50"), None),
        ("", Decimal("0.00"), "Enter an amount."),
        ("NaN", Decimal("0.00"), "Enter an ordinary number, not NaN or Infinity."),
        (
            "1e3",
            Decimal("0.00"),
            "Write the amount out in full, without an exponent like 1e5.",
        ),
        ("-5", Decimal("0.00"), "This amount cannot be negative."),
        ("1.005", Decimal("0.00"), "Use at most 2 decimal places."),
    ],
)
def test_strict_amount(flask_app, raw, value, message) -> None:
    got = read(flask_app, f.StrictAmountField(), {"x": raw})
    assert got[0] == value
    assert (got[1] is None) == (message is None)
    if message:
        assert got[1] == message


def test_strict_amount_negative_and_blank(flask_app) -> None:
    field = f.StrictAmountField(allow_negative=True, required=False)
    assert read(flask_app, field, {"x": "-5"}) == (Decimal("-5.00"), None)
    assert read(flask_app, field, {"x": ""}) == (Decimal("0.00"), None)


@pytest.mark.parametrize(
    ("raw", "ok"),
    [("10", True), ("12.3456", True), ("100", True), ("100.01", False), ("x", False)],
)
def test_percent(flask_app, raw, ok) -> None:
    value, message = read(flask_app, f.PercentField(), {"x": raw})
    assert (message is None) == ok
    if ok:
        assert value == Decimal(raw)


@pytest.mark.parametrize(
    ("raw", "value", "message"),
    [
        ("2024-02-29", date(2024, 2, 29), None),
        ("2023-02-29", None, "Enter a date as YYYY-MM-DD."),
        ("2024-2-1", None, "Enter a date as YYYY-MM-DD."),
        ("２０２４-01-01", None, "Enter a date as YYYY-MM-DD."),
        ("1899-12-31", None, "Enter a date between the years 1900 and 2200."),
        ("", None, "Enter a date."),
    ],
)
def test_strict_date(flask_app, raw, value, message) -> None:
    assert read(flask_app, f.StrictDateField(), {"x": raw}) == (value, message)


def test_optional_date(flask_app) -> None:
    assert read(flask_app, f.StrictDateField(required=False), {"x": " "}) == (
        None,
        None,
    )


@pytest.mark.parametrize(
    ("raw", "value", "message"),
    [
        ("7", 7, None),
        ("", None, "Choose one of the options."),
        ("0", None, "Choose one of the options."),
        ("07", None, "Choose one of the options."),
        ("-1", None, "Choose one of the options."),
        (str(MAX_ID), MAX_ID, None),
        (str(MAX_ID + 1), None, "Choose one of the options."),
        ("١", None, "Choose one of the options."),
    ],
)
def test_id_select(flask_app, raw, value, message) -> None:
    assert read(flask_app, f.IdField(), {"x": raw}) == (value, message)


def test_id_list(flask_app) -> None:
    class Ids(f.StrictForm):
        x = f.IdListField()

    data = MultiDict([("x", "3"), ("x", "x"), ("x", "3"), ("x", str(MAX_ID + 1))])
    data.add("x", "1")
    with flask_app.test_request_context(method="POST", data=data):
        form = Ids()
        assert form.check()
        assert form.x.data == [3, 1]
        assert form.x.bad


def test_parse_id_is_the_one_limit() -> None:
    assert parse_id(str(MAX_ID)) == MAX_ID
    assert parse_id(str(MAX_ID + 1)) is None
    assert parse_id(" 12 ") == 12
    assert parse_id(None) is None


@pytest.mark.parametrize(
    ("raw", "value", "message"),
    [
        ("b", "b", None),
        ("", "a", None),
        ("z", "a", "Choose one of the options."),
    ],
)
def test_choice(flask_app, raw, value, message) -> None:
    field = f.StrictChoiceField(choices=["a", "b"], default="a")
    assert read(flask_app, field, {"x": raw}) == (value, message)


def test_choice_without_default_refuses_blank(flask_app) -> None:
    field = f.StrictChoiceField(choices=lambda: ["a", "b"])
    assert read(flask_app, field, {"x": ""}) == ("a", "Choose one of the options.")


@pytest.mark.parametrize(
    ("data", "value"),
    [({"x": "1"}, True), ({"x": "on"}, True), ({"x": "off"}, False), ({}, False)],
)
def test_flag(flask_app, data, value) -> None:
    assert read(flask_app, f.FlagField(), data) == (value, None)


@pytest.mark.parametrize(
    ("raw", "value", "message"),
    [
        ("12", 12, None),
        ("", None, "Enter a number."),
        ("1.5", None, "Enter a whole number."),
        ("99", None, "Enter a number from 1 to 60."),
    ],
)
def test_integer(flask_app, raw, value, message) -> None:
    field = f.StrictIntegerField(minimum=1, maximum=60)
    assert read(flask_app, field, {"x": raw}) == (value, message)


@pytest.mark.parametrize(
    ("raw", "value", "message"),
    [
        ("a@b.co", "a@b.co", None),
        ("", "", "Enter an email address."),
        ("a b@c.de", "", "Enter a valid email address, like name@example.com."),
        ("a@" + "b" * 260 + ".de", "", "Use at most 254 characters."),
    ],
)
def test_email(flask_app, raw, value, message) -> None:
    assert read(flask_app, f.StrictEmailField(), {"x": raw}) == (value, message)


def test_raw_text_keeps_spaces_and_cuts(flask_app) -> None:
    field = f.RawTextField(max_len=4, required_message="Enter it.")
    assert read(flask_app, field, {"x": " ab cd"}) == (" ab ", None)
    assert read(flask_app, field, {"x": ""}) == ("", "Enter it.")


def test_domain_errors_go_beside_fields_and_skipped_fields_pass(flask_app) -> None:
    class Two(f.StrictForm):
        a = f.StrictIntegerField(minimum=1, maximum=2)
        b = f.StrictIntegerField(minimum=1, maximum=2)

        def validate(self, extra_validators=None) -> bool:
            self.b.skipped = True
            return super().validate(extra_validators)

    with flask_app.test_request_context(method="POST", data={"a": "1", "b": "x"}):
        form = Two()
        assert form.check()
        form.add_errors({"a": "Already in use.", "elsewhere": "Not a field."})
        assert form.messages == {"a": "Already in use.", "elsewhere": "Not a field."}
        assert not form.ok
        assert form.values["b"] == "x"


def test_a_form_reads_a_plain_mapping(flask_app) -> None:
    class Dates(f.StrictForm):
        since = f.StrictDateField(required=False)

    with flask_app.test_request_context():
        form = Dates(formdata={"since": "2026-13-01"})
        assert not form.check()
        assert form.messages == {"since": "Enter a date as YYYY-MM-DD."}


def test_domain_modules_do_not_import_the_form_layer() -> None:
    root = Path(__file__).resolve().parents[1] / "portal"
    blueprints = {"admin", "contact", "exports"}
    offenders = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if rel.parts[0] in blueprints or rel.parts[0] == "web":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            modules: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                modules = [base] + [f"{base}.{a.name}".lstrip(".") for a in node.names]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            if any(
                m in ("portal.web.forms", "flask_wtf")
                or m.startswith(("wtforms", "flask_wtf.form"))
                for m in modules
            ):
                offenders.append(str(rel))
    # (extensions.py's CSRFProtect, from flask_wtf.csrf, is not the form layer.)
    assert offenders == []


def test_the_form_layer_imports_no_blueprint() -> None:
    path = Path(__file__).resolve().parents[1] / "portal" / "web" / "forms.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            assert node.level == 0, module
            assert not module.startswith(
                ("portal.admin", "portal.contact", "portal.exports")
            ), module


def test_posted_text_is_handed_on_unchanged(flask_app) -> None:
    # The domain cleans and checks it: the form neither trims nor refuses.
    assert read(flask_app, f.PostedTextField(), {"x": "  a\tb\x00 "}) == (
        "  a\tb\x00 ",
        None,
    )
    assert read(flask_app, f.PostedTextField(), {}) == ("", None)

    class Two(f.StrictForm):
        x = f.PostedTextField()
        y = f.PostedTextField()

    with flask_app.test_request_context(method="POST", data={"x": ""}):
        form = Two()
        assert form.x.present and not form.y.present
