"""Fixtures for the finance exports: SPEC §4's worked example, approved, with ERP codes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portal.extensions import db
from portal.models import User

from ..helpers import STAFF, build_world

D = Decimal


@pytest.fixture
def example(ctx, today):
    """The worked example with billings 1 and 2 approved and ERP codes set."""
    return build_world(today, approved=True, erp=True)


@pytest.fixture
def data(app, today):
    """The worked example approved with ERP codes, staff users and API tokens,
    committed without keeping an app context pushed (for client tests)."""
    from portal.accounts import api_tokens

    with app.app_context():
        out = build_world(today, staff=STAFF, approved=True, erp=True)
        tokens = {}
        for role in ("finance", "viewer", "admin"):
            user = db.session.get(User, out.staff[role])
            _, tokens[role] = api_tokens.create_token(user, f"{role} tool")
        db.session.commit()
    out.tokens = tokens
    return out
