"""The migrated schema: matches the models, and keeps the rules in the database."""

from __future__ import annotations

import warnings
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import (
    Billing,
    BillingLine,
    BillingPeriod,
    Contact,
    ExportBatch,
    User,
)

from . import factories as f

D = Decimal
pytestmark = pytest.mark.usefixtures("ctx")


def _diff(connection) -> list:
    with warnings.catch_warnings():
        # SQLite reflection can't see expression indexes (lower(email)); alembic
        # warns and skips them on both sides, which is what we want here.
        warnings.simplefilter("ignore")
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": False}
        )
        return compare_metadata(context, db.metadata)


def test_migration_matches_models(ctx) -> None:
    """Autogenerate against the migrated database finds nothing to do."""
    with db.engine.connect() as conn:
        diff = _diff(conn)
    assert diff == []


def test_expression_indexes_exist(ctx) -> None:
    """The case-insensitive unique indexes the comparison can't see are there."""
    if db.engine.dialect.name == "postgresql":
        query = (
            "SELECT indexname FROM pg_indexes WHERE tablename IN ('users', 'contacts')"
        )
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'index'"
    names = set(db.session.execute(sa.text(query)).scalars())
    assert {"uq_contacts_vendor_id_email_lower", "uq_users_email_lower"} <= names


@pytest.mark.parametrize(
    "value", ["0.01", "-0.05", "999999999999.99", "-999999999999.99", "0.00"]
)
def test_money_round_trips_exactly(ctx, value: str) -> None:
    user = f.make_user()
    batch = ExportBatch(
        format="csv",
        created_by_id=user.id,
        filename="x.csv",
        content_type="text/csv",
        content=b"x",
        sha256="0" * 64,
        billing_count=0,
        total_amount=D(value),
    )
    db.session.add(batch)
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(ExportBatch, batch.id).total_amount
    assert stored == D(value) and str(stored) == value
    raw = db.session.execute(
        sa.text("SELECT total_amount FROM export_batches WHERE id = :i"),
        {"i": batch.id},
    ).scalar_one()
    assert raw == int(D(value) * 100)  # integer cents on disk
    total = db.session.execute(
        sa.select(sa.func.sum(ExportBatch.total_amount))
    ).scalar_one()
    assert total == D(value)


def test_money_refuses_floats_and_fractions_of_cents(ctx) -> None:
    user = f.make_user()
    for bad in (1.5, D("0.001")):
        batch = ExportBatch(
            format="csv",
            created_by_id=user.id,
            filename="x",
            content_type="t",
            content=b"",
            sha256="",
            billing_count=0,
            total_amount=bad,
        )
        db.session.add(batch)
        with pytest.raises(sa.exc.StatementError):
            db.session.flush()
        db.session.rollback()


def _billing(world, status: str = "draft", application_number: int = 1) -> Billing:
    return Billing(
        commitment_id=world.commitment_id,
        period_id=world.period1_id,
        application_number=application_number,
        status=status,
        created_by_user_id=world.admin_id,
    )


def test_one_live_billing_per_commitment_and_period(world) -> None:
    db.session.add(_billing(world))
    db.session.commit()
    db.session.add(_billing(world, application_number=2))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    # A void one doesn't count.
    db.session.add(_billing(world, status="void", application_number=3))
    db.session.commit()


def test_contact_email_unique_per_vendor_case_insensitively(world) -> None:
    vendor_id = world.vendor_id
    db.session.add(
        Contact(vendor_id=vendor_id, name="Dup", email="CASEY@Example-Electric.example")
    )
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    other = f.make_vendor()
    db.session.add(
        Contact(
            vendor_id=other.id,
            name="Same person",
            email="casey@example-electric.example",
        )
    )
    db.session.commit()


def test_user_email_unique_case_insensitively(ctx) -> None:
    f.make_user(email="Pat@Example.com")
    db.session.commit()
    with pytest.raises(IntegrityError):
        f.make_user(email="pat@example.COM")
    db.session.rollback()


def test_one_open_period_per_project(world) -> None:
    db.session.add(
        BillingPeriod(
            project_id=world.project_id,
            sequence=2,
            start_date=date(2030, 1, 1),
            end_date=date(2030, 1, 31),
            due_date=date(2030, 1, 25),
            billing_date=date(2030, 1, 31),
            status="open",
        )
    )
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


@pytest.mark.parametrize(
    ("model", "values"),
    [
        (User, {"email": "x@y.z", "name": "x", "password_hash": "x", "role": "root"}),
        (
            BillingPeriod,
            {
                "sequence": 5,
                "start_date": date(2030, 2, 1),
                "end_date": date(2030, 1, 1),
                "due_date": date(2030, 1, 1),
                "billing_date": date(2030, 1, 1),
                "status": "closed",
            },
        ),
    ],
)
def test_check_constraints(world, model, values) -> None:
    if model is BillingPeriod:
        values = values | {"project_id": world.project_id}
    db.session.add(model(**values))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_negative_materials_refused_by_database(world) -> None:
    billing = _billing(world)
    billing.lines.append(
        BillingLine(sov_line_id=world.line_ids[0], claimed_materials=D("-1.00"))
    )
    db.session.add(billing)
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_foreign_keys_enforced(ctx) -> None:
    db.session.add(Contact(vendor_id=987654, name="Orphan", email="o@x.example"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_billing_needs_exactly_one_creator(world) -> None:
    billing = _billing(world)
    billing.created_by_user_id = None
    db.session.add(billing)
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
