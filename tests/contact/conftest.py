"""Fixtures for the contact portal tests.

No app context stays pushed during a test: Flask would reuse it for every
test-client request, so ``g`` (and Flask-Login's cached user) would leak from
one request to the next. ``w`` is the shared ``world`` (built in a short-lived
context); ``app_ctx`` opens a fresh context only to look at the database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from portal.accounts import tokens
from portal.billing import billings
from portal.extensions import db
from portal.models import Billing, BillingPeriod, Contact, User

D = Decimal


@pytest.fixture
def w(world):
    """The shared ``world`` (SPEC §4's worked example), under its short name here."""
    return world


@pytest.fixture
def app_ctx(app) -> Callable[[], Any]:
    """``with app_ctx():`` a fresh app context for DB checks between requests."""

    @contextmanager
    def open_ctx() -> Iterator[None]:
        with app.app_context():
            yield
            db.session.remove()

    return open_ctx


@pytest.fixture
def issue(app) -> Callable[..., str]:
    """Issue a magic link for a contact id (committed); return the token."""

    def _issue(contact_id: int, invitation_id: int | None = None) -> str:
        with app.app_context():
            contact = db.session.get(Contact, contact_id)
            invitation = None
            if invitation_id is not None:
                from portal.models import Invitation

                invitation = db.session.get(Invitation, invitation_id)
            _, token = tokens.issue_link(contact, invitation)
            db.session.commit()
            db.session.remove()
        return token

    return _issue


@pytest.fixture
def make_billing(app) -> Callable[..., int]:
    """Create a draft for (commitment, world period 1) as the contact; return its id."""

    def _make(
        world: SimpleNamespace, contact_id: int | None = None, **amounts: Any
    ) -> int:
        with app.app_context():
            from portal.models import Commitment

            contact = db.session.get(Contact, contact_id or world.contact_id)
            commitment = db.session.get(Commitment, world.commitment_id)
            period = db.session.get(BillingPeriod, world.period1_id)
            billing = billings.create_billing(commitment, period, contact)
            if amounts:
                billings.save_billing(
                    billing,
                    contact,
                    billings.BillingInput(lines=amounts["lines"]),
                    billing.version,
                )
            db.session.commit()
            billing_id = billing.id
            db.session.remove()
        return billing_id

    return _make


def admin(world: SimpleNamespace) -> User:
    return db.session.get(User, world.admin_id)


def billing_row(billing_id: int) -> Billing:
    return db.session.get(Billing, billing_id)


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def count(model: Any, *where: Any) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(model).where(*where)
    )


def text_of(html: str) -> str:
    """The visible text, tags stripped and whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def form_for(
    world: SimpleNamespace, version: int, action: str = "save", **values: str
) -> dict:
    """A billing form: ``l1w="20,000"`` → line 1 work; ``l2m`` → line 2 materials."""
    data: dict[str, str] = {"version": str(version), "action": action}
    for n, sov_id in enumerate(world.line_ids, start=1):
        data[f"line-{sov_id}-work"] = values.pop(f"l{n}w", "")
        data[f"line-{sov_id}-materials"] = values.pop(f"l{n}m", "")
        if f"l{n}i" in values:  # ``l2i`` → line 2 stored materials installed
            data[f"line-{sov_id}-installed"] = values.pop(f"l{n}i")
    data.update(values)
    return data


def review(app, billing_id: int, admin_id: int, decisions: dict[int, tuple]) -> None:
    """As the admin: ``{sov_line_id: (status, work, materials, comment)}``; others approved as claimed."""
    with app.app_context():
        billing = db.session.get(Billing, billing_id)
        user = db.session.get(User, admin_id)
        reviews = {}
        for bl in billing.lines:
            status, work, materials, comment = decisions.get(
                bl.sov_line_id,
                ("approved", str(bl.claimed_work), str(bl.claimed_materials), ""),
            )
            reviews[bl.id] = billings.LineReview(work, materials, status, comment)
        billings.review_lines(billing, user, reviews, billing.version)
        db.session.commit()
        db.session.remove()


def send_back(app, billing_id: int, admin_id: int, comment: str = "") -> None:
    with app.app_context():
        billing = db.session.get(Billing, billing_id)
        billings.send_back(
            billing, db.session.get(User, admin_id), billing.version, comment
        )
        db.session.commit()
        db.session.remove()


def approve(app, billing_id: int, admin_id: int) -> str:
    with app.app_context():
        billing = db.session.get(Billing, billing_id)
        status = billings.approve_billing(
            billing, db.session.get(User, admin_id), billing.version
        )
        db.session.commit()
        db.session.remove()
    return status


def version_of(app, billing_id: int) -> int:
    with app.app_context():
        version = db.session.get(Billing, billing_id).version
        db.session.remove()
    return version
