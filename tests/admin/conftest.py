"""Fixtures for the back-office tests: data is built inside a short app context,
then the test client is used with no app context pushed (so every request gets
its own session and ``current_user``, as in production)."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from portal.core.statuses import Role
from portal.extensions import db
from portal.models import (
    Attachment,
    AuditEvent,
    Billing,
    ChangeOrder,
    ChangeOrderItem,
    Commitment,
    OutboxMessage,
    User,
)

from .. import factories as f

D = Decimal


@pytest.fixture
def staff(app):
    """One active user per role: {"admin": id, "finance": id, "viewer": id}."""
    with app.app_context():
        out = {role.value: f.make_user(role=role.value).id for role in Role}
        db.session.commit()
    return out


@pytest.fixture
def world_ids(app):
    """SPEC §4's worked example (see tests/factories.build_world), as ids."""
    with app.app_context():
        return f.build_world()


@pytest.fixture
def as_role(auth, staff):
    """``as_role("viewer")`` signs the test client in as that role's user."""

    def sign_in(role: str) -> int:
        auth.login_user(staff[role])
        return staff[role]

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
    from portal.billing import billings

    with app.app_context():
        w = f.build_world()
        admin = db.session.get(User, w.admin_id)
        commitment = db.session.get(Commitment, w.commitment_id)
        period = commitment.project.periods[0]
        billing = billings.create_billing(commitment, period, admin)
        contract = f.make_client_contract(commitment.project, [("26-100", "90000")])
        from portal import upstream

        claim = upstream.generate_claim(contract, period, admin)
        co = ChangeOrder(commitment=commitment, number="CO-P", title="Pending")
        db.session.add(co)
        db.session.flush()
        item = ChangeOrderItem(
            change_order_id=co.id, sov_line_id=w.line_ids[0], amount=D("100.00")
        )
        db.session.add(item)
        data = b"%PDF-1.4 test invoice\n"
        stored = "a" * 32 + ".pdf"
        folder = app.config["UPLOAD_FOLDER"]
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, stored), "wb") as fh:
            fh.write(data)
        attachment = Attachment(
            billing_id=billing.id,
            uploaded_by_user_id=admin.id,
            original_name="invoice 7.pdf",
            stored_name=stored,
            content_type="application/pdf",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            kind="invoice",
        )
        db.session.add(attachment)
        message = OutboxMessage(
            kind="invite",
            recipient="x@example.com",
            subject="Hello",
            body_text="t",
            body_html="h",
            status="failed",
            attempts=8,
        )
        db.session.add(message)
        db.session.flush()
        ids = SimpleNamespace(
            **vars(w),
            billing_id=billing.id,
            contract_id=contract.id,
            client_line_id=contract.lines[0].id,
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
