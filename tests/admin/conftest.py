"""Fixtures for the back-office tests: data is built inside a short app context,
then the test client is used with no app context pushed (so every request gets
its own session and ``current_user``, as in production)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import (
    AuditEvent,
    Billing,
    BillingPeriod,
    ClientContract,
    Commitment,
    User,
)

from .. import factories as f
from ..clock import pinned_today
from ..helpers import Contract, build_world

D = Decimal


@pytest.fixture
def as_role(auth, users):
    """``as_role("viewer")`` signs the test client in as that role's user."""

    def sign_in(role: str) -> int:
        auth.login_user(users[role])
        return users[role]

    return sign_in


def rows(app, model, *where):
    """Every row of ``model`` matching ``where`` (read in a fresh context)."""
    with app.app_context():
        objs = db.session.scalars(sa.select(model).where(*where)).all()
        db.session.expunge_all()
        return objs


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(
            sa.select(sa.func.count()).select_from(model).where(*where)
        )


def audit_actions(app, **where) -> list[str]:
    """The actions of the audit events matching ``where``, oldest first."""
    with app.app_context():
        stmt = sa.select(AuditEvent.action).order_by(AuditEvent.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(AuditEvent, key) == value)
        return list(db.session.scalars(stmt))


def get(app, model, pk):
    with app.app_context():
        obj = db.session.get(model, pk)
        if obj is not None:
            db.session.expunge(obj)
        return obj


def make_everything(app) -> SimpleNamespace:
    """The worked example plus one of every other object, for the URL-map walk."""
    from portal import upstream
    from portal.billing import billings

    with app.app_context():
        w = build_world(pinned_today(), contract=Contract((("26-100", "90000"),)))
        admin = db.session.get(User, w.admin_id)
        commitment = db.session.get(Commitment, w.commitment_id)
        period = db.session.get(BillingPeriod, w.period1_id)
        billing = billings.create_billing(commitment, period, admin)
        contract = db.session.get(ClientContract, w.contract_id)
        claim = upstream.generate_claim(contract, period, admin)
        co, item = f.make_pending_change_order(w.commitment_id, w.line_ids[0])
        data = b"%PDF-1.4 test invoice\n"
        attachment = f.make_attachment(
            billing.id,
            data,
            "a" * 32 + ".pdf",
            user=admin,
            original_name="invoice 7.pdf",
        )
        message = f.make_failed_message()
        ids = SimpleNamespace(
            **vars(w),
            billing_id=billing.id,
            client_line_id=w.client_line_ids[0],
            claim_id=claim.id,
            claim_line_id=claim.lines[0].id,
            change_order_id=co.id,
            item_id=item.id,
            attachment_id=attachment.id,
            message_id=message.id,
            attachment_bytes=data,
        )
        db.session.commit()
        return ids


@pytest.fixture
def everything(app):
    return make_everything(app)


def days(n: int) -> timedelta:
    return timedelta(days=n)


__all__ = ["Billing", "audit_actions", "count", "days", "get", "rows"]
