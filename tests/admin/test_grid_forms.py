"""The back office's grid and claim forms (portal.admin.forms) on their own.

The G703 grids are built per line with ``build()``; they must give the domain's
messages beside the same ``line-<id>-<column>`` fields before the domain runs.
"""

from __future__ import annotations

import pytest
from flask import Flask

from portal.admin import forms as af
from portal.core.amounts import MSG_NEGATIVE, MSG_REQUIRED, MSG_SPECIAL


@pytest.fixture(scope="module")
def flask_app() -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="grid-forms-test", TESTING=True)
    return app


def test_approve_grid_checks_posted_lines_only(flask_app) -> None:
    data = {
        "version": "3",
        "line-1-work": "NaN",
        "line-1-materials": "-5",
        "line-2-work": "1,000.00",  # materials left out: required
        "billing-7": "1",
        "billing-8": "on",
    }
    with flask_app.test_request_context(method="POST", data=data):
        form = af.claim_approve_form([1, 2, 3])
        assert not form.check()
        assert form.messages == {
            "line-1-work": MSG_SPECIAL,
            "line-1-materials": MSG_NEGATIVE,
            "line-2-materials": MSG_REQUIRED,
        }
        assert form.expected_version == 3
        # Line 3 was not posted: approved as claimed, so it is not in amounts.
        assert form.posted_amounts() == {1: ("NaN", "-5"), 2: ("1,000.00", "")}
        assert form.checked_billings() == [7]
        assert form.values["line-1-work"] == "NaN"


def test_claim_version_missing_or_odd_is_stale_not_a_field_error(flask_app) -> None:
    for raw in ("", "abc", "0"):
        with flask_app.test_request_context(method="POST", data={"version": raw}):
            form = af.ClaimSubmitForm()
            assert form.check()
            assert form.expected_version == 0


def test_review_grid_one_message_per_line_and_revise_needs_a_comment(
    flask_app,
) -> None:
    data = {
        "line-1-work": "12abc",
        "line-1-status": "bogus",  # only the work message is shown
        "line-2-work": "10",
        "line-2-materials": "0",
        "line-2-status": "revise",
        "line-3-status": "maybe",
        "line-4-work": "5",  # no status posted: the line is not reviewed
        "line-5-work": "5",
        "line-5-status": "approved",
    }
    with flask_app.test_request_context(method="POST", data=data):
        form = af.review_lines_form([1, 2, 3, 4, 5])
        assert not form.check()
        assert set(form.messages) == {"line-1-work", "line-2-comment", "line-3-status"}
        assert form.messages["line-2-comment"] == "Say what needs revising."
        assert form.messages["line-3-status"] == "Choose approve or revise."
        assert sorted(form.reviews()) == [1, 2, 3, 5]
        assert form.reviews()[5].approved_work == "5"


def test_entry_grid_refuses_a_line_of_another_billing(flask_app) -> None:
    data = {"version": "1", "line-10-work": "5", "line-99-work": "1"}
    with flask_app.test_request_context(method="POST", data=data):
        form = af.billing_edit_form([10, 11], releasing=True)
        assert not form.check()
        assert form.messages == {"lines": af.UNKNOWN_LINE}
        assert form.posted_amounts() == {10: ("5", "")}


def test_entry_grid_release_counts_only_when_the_project_allows_it(flask_app) -> None:
    data = {"version": "1", "retainage_released": "-3", "line-10-materials": "-1"}
    with flask_app.test_request_context(method="POST", data=data):
        form = af.billing_edit_form([10], releasing=False)
        assert not form.check()
        assert form.messages == {"line-10-materials": MSG_NEGATIVE}
        form = af.billing_edit_form([10], releasing=True)
        assert not form.check()
        assert form.messages["retainage_released"] == MSG_NEGATIVE


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"work": "5", "reason": ""}, "Say why"),
        ({"materials": "-2.50"}, "Say why"),
        ({"work": "0", "materials": ""}, None),
        ({"work": "5", "reason": "x" * 1001}, "Use at most 1000 characters."),
    ],
)
def test_adjustment_needs_a_reason_when_not_zero(flask_app, data, message) -> None:
    with flask_app.test_request_context(method="POST", data=data):
        form = af.ClaimAdjustForm()
        form.check()
        got = form.messages.get("reason")
        assert (got is None) if message is None else got.startswith(message)


def test_void_needs_a_reason_and_generate_needs_ids(flask_app) -> None:
    with flask_app.test_request_context(method="POST", data={"reason": "  "}):
        form = af.ClaimVoidForm()
        assert not form.check()
        assert form.messages == {"reason": "Give a reason for voiding."}
    with flask_app.test_request_context(method="POST", data={"contract_id": "x"}):
        form = af.ClaimGenerateForm()
        assert not form.check()
        assert set(form.messages) == {"contract_id", "period_id"}


def test_add_line_gives_the_domain_messages(flask_app) -> None:
    data = {"cost_code": "", "description": "d" * 301, "scheduled_value": "-1"}
    with flask_app.test_request_context(method="POST", data=data):
        form = af.ClaimAddLineForm()
        assert not form.check()
        assert form.messages == {
            "cost_code": "Enter a cost code.",
            "description": "Use at most 300 characters.",
            "scheduled_value": MSG_NEGATIVE,
        }
    data = {"cost_code": "x" * 41, "client_sov_line_id": "abc"}
    with flask_app.test_request_context(method="POST", data=data):
        form = af.ClaimMapForm()
        assert not form.check()
        assert form.messages == {
            "cost_code": "Choose a cost code to map.",
            "client_sov_line_id": "Choose a line of this client contract.",
        }


def test_back_field(flask_app) -> None:
    with flask_app.test_request_context(method="POST", data={"back": " /admin/x "}):
        assert af.BackForm().target == "/admin/x"
    with flask_app.test_request_context(method="POST", data={"back": "/" * 2001}):
        assert af.BackForm().target == ""
    with flask_app.test_request_context(method="POST", data={}):
        assert af.BackForm().target == ""
