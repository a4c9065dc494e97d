"""Export batches (SPEC §7): exactly once, all or nothing, reversible with a reason."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.finance import batches as export_batches
from portal.finance import builders
from portal.finance.batches import (
    ExportConflict,
    ExportError,
    ExportForbidden,
    NotReady,
    ReasonRequired,
    UnknownBillings,
)
from portal.models import (
    AuditEvent,
    Billing,
    ErpCostCode,
    ExportBatch,
    ExportBatchItem,
    Project,
    User,
)
from tests import factories as f

D = Decimal


@pytest.fixture
def finance(example):
    user = f.make_user("finance")
    db.session.commit()
    return user


def _batches() -> int:
    return db.session.scalar(sa.select(sa.func.count(ExportBatch.id)))


def test_create_batch_stores_bytes_marks_billings_and_audits(example, finance) -> None:
    ids = [example.billing1_id, example.billing2_id]
    batch = export_batches.create_batch(finance, "csv", ids)
    db.session.commit()
    db.session.expire_all()
    batch = db.session.get(ExportBatch, batch.id)
    assert batch.format == "csv"
    assert batch.billing_count == 2
    assert batch.total_amount == D("23700.00") + D("22775.00")
    project = db.session.get(Project, example.project_id)
    # Named after what it holds: two periods of one project (issue 14 item 15).
    assert batch.filename == f"{project.number}-batch-{batch.id:05d}-csv.csv"
    assert batch.content_type.startswith("text/csv")
    assert batch.sha256 == hashlib.sha256(batch.content).hexdigest()
    assert sorted(i.billing_id for i in batch.items) == sorted(ids)
    for billing_id in ids:
        assert db.session.get(Billing, billing_id).export_batch_id == batch.id
    # The stored bytes are exactly what the builder makes for these rows.
    billings = export_batches.load_billings(ids)
    rows = export_batches.export_rows(billings)
    info = builders.BatchInfo(batch.id, batch.created_at)
    assert batch.content == builders.build_csv([rows[i] for i in sorted(ids)], info)
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "export_batch.create")
    )
    assert event.object_type == "export_batch" and event.object_id == batch.id
    assert event.actor_user_id == finance.id
    assert event.after["billing_ids"] == sorted(ids)
    assert event.after["sha256"] == batch.sha256


def test_a_billing_is_never_in_two_live_batches(example, finance) -> None:
    first = export_batches.create_batch(finance, "iif", [example.billing2_id])
    db.session.commit()
    with pytest.raises(ExportConflict, match="Already exported"):
        export_batches.create_batch(
            finance, "csv", [example.billing1_id, example.billing2_id]
        )
    db.session.rollback()
    assert _batches() == 1
    assert db.session.get(Billing, example.billing1_id).export_batch_id is None
    assert db.session.get(Billing, example.billing2_id).export_batch_id == first.id


def test_compare_and_set_refuses_billings_exported_meanwhile(example, finance) -> None:
    """The UPDATE … WHERE export_batch_id IS NULL decides, not the earlier read."""
    winner = export_batches.create_batch(finance, "csv", [example.billing1_id])
    db.session.commit()
    loser = ExportBatch(
        format="csv",
        created_by_id=finance.id,
        filename="x",
        content_type="text/csv",
        content=b"",
        sha256="",
        billing_count=2,
    )
    db.session.add(loser)
    db.session.flush()
    with pytest.raises(ExportConflict, match="meanwhile"):
        export_batches._claim(loser, [example.billing1_id, example.billing2_id])
    db.session.rollback()
    assert db.session.get(Billing, example.billing1_id).export_batch_id == winner.id
    assert db.session.get(Billing, example.billing2_id).export_batch_id is None


def test_missing_codes_hold_billings_back_and_write_nothing(example, finance) -> None:
    project = db.session.get(Project, example.project_id)
    project.erp_job_number = None
    db.session.execute(sa.update(ErpCostCode).values(sage_cost_code=""))
    db.session.commit()
    with pytest.raises(NotReady) as caught:
        export_batches.create_batch(finance, "sage300", [example.billing2_id])
    db.session.rollback()
    problems = caught.value.problems[example.billing2_id]
    assert "Missing job number for project 1024" in problems
    assert "Missing Sage cost code for cost code 26-100" in problems
    assert "Missing Sage cost code for cost code 26-300" in problems
    assert caught.value.labels[example.billing2_id] == "SC-100 #2"
    assert _batches() == 0
    assert db.session.get(Billing, example.billing2_id).export_batch_id is None
    # QuickBooks does not need a job number: the same billing is ready for IIF.
    batch = export_batches.create_batch(finance, "iif", [example.billing2_id])
    assert batch.billing_count == 1


def test_iif_needs_accounts_and_customer_job(example, finance) -> None:
    project = db.session.get(Project, example.project_id)
    project.qb_customer_job = None
    settings = export_batches.erp_settings()
    settings.ap_account = ""
    settings.retainage_payable_account = ""
    settings.default_expense_account = ""
    db.session.commit()
    billing = db.session.get(Billing, example.billing2_id)
    row = export_batches.export_rows([billing])[billing.id]
    assert export_batches.problems_for(row, "iif") == [
        "Missing AP account (ERP settings)",
        "Missing retainage payable account (ERP settings)",
        "Missing QuickBooks Customer:Job for project 1024",
        "Missing expense account for cost code 26-200",
    ]
    assert export_batches.problems_for(row, "csv") == []


def test_only_approved_billings_can_be_exported(example, finance) -> None:
    billing = db.session.get(Billing, example.billing2_id)
    db.session.execute(
        sa.update(Billing).where(Billing.id == billing.id).values(status="under_review")
    )
    db.session.commit()
    with pytest.raises(ExportConflict, match="Only approved"):
        export_batches.create_batch(finance, "csv", [example.billing2_id])
    db.session.rollback()
    assert _batches() == 0


def test_unknown_ids_empty_selection_and_bad_format(example, finance) -> None:
    with pytest.raises(UnknownBillings) as caught:
        export_batches.create_batch(finance, "csv", [example.billing1_id, 999999])
    assert caught.value.ids == [999999]
    with pytest.raises(ExportError, match="at least one"):
        export_batches.create_batch(finance, "csv", [])
    with pytest.raises(ExportError, match="Unknown export format"):
        export_batches.create_batch(finance, "pdf", [example.billing1_id])
    assert _batches() == 0


def test_viewer_cannot_create_or_reverse(example, finance) -> None:
    viewer = f.make_user("viewer")
    with pytest.raises(ExportForbidden):
        export_batches.create_batch(viewer, "csv", [example.billing1_id])
    batch = export_batches.create_batch(finance, "csv", [example.billing1_id])
    db.session.commit()
    with pytest.raises(ExportForbidden):
        export_batches.reverse_batch(batch, viewer, "no")
    assert batch.reversed_at is None


def test_reverse_needs_a_reason_and_frees_the_billings(example, finance) -> None:
    ids = [example.billing1_id, example.billing2_id]
    batch = export_batches.create_batch(finance, "xlsx", ids)
    db.session.commit()
    content = batch.content
    with pytest.raises(ReasonRequired) as caught:
        export_batches.reverse_batch(batch, finance, "   ")
    assert "reason" in caught.value.errors
    assert db.session.get(ExportBatch, batch.id).reversed_at is None
    freed = export_batches.reverse_batch(
        batch, finance, "Imported into the wrong company"
    )
    db.session.commit()
    db.session.expire_all()
    assert freed == sorted(ids)
    batch = db.session.get(ExportBatch, batch.id)
    assert batch.reversed_at is not None
    assert batch.reversed_by_id == finance.id
    assert batch.reverse_reason == "Imported into the wrong company"
    assert batch.content == content  # the file stays, byte for byte
    items = db.session.scalars(
        sa.select(ExportBatchItem.billing_id).where(
            ExportBatchItem.batch_id == batch.id
        )
    ).all()
    assert sorted(items) == sorted(ids)  # kept as history
    for billing_id in ids:
        assert db.session.get(Billing, billing_id).export_batch_id is None
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "export_batch.reverse")
    )
    assert event.after["reason"] == "Imported into the wrong company"
    assert event.before["billing_ids"] == sorted(ids)
    with pytest.raises(ExportConflict, match="already been reversed"):
        export_batches.reverse_batch(batch, finance, "again")
    # Freed billings can be exported again, into exactly one live batch.
    again = export_batches.create_batch(finance, "csv", ids)
    db.session.commit()
    assert {db.session.get(Billing, i).export_batch_id for i in ids} == {again.id}


def test_readiness_lists_unexported_approved_billings(example, finance) -> None:
    query = export_batches.unexported_query(project_id=example.project_id)
    billings = list(db.session.scalars(query).unique())
    assert [b.id for b in billings] == [example.billing1_id, example.billing2_id]
    items = export_batches.readiness(billings, "sage300")
    assert all(item.ready for item in items)
    export_batches.create_batch(finance, "csv", [example.billing1_id])
    db.session.commit()
    left = list(db.session.scalars(export_batches.unexported_query()).unique())
    assert [b.id for b in left] == [example.billing2_id]
    assert not list(
        db.session.scalars(export_batches.unexported_query(vendor_id=999)).unique()
    )


def test_latest_format_defaults_to_csv_then_follows_batches(example, finance) -> None:
    assert export_batches.latest_format() == "csv"
    export_batches.create_batch(finance, "sage300", [example.billing1_id])
    db.session.commit()
    assert export_batches.latest_format() == "sage300"


def test_users_fixture_roles_map(example) -> None:
    """The worked example's admin may export too (finance and admin roles)."""
    admin = db.session.get(User, example.admin_id)
    batch = export_batches.create_batch(admin, "iif", [example.billing1_id])
    assert batch.created_by_id == admin.id


@pytest.mark.parametrize("fmt", sorted(builders.FORMATS))
def test_streaming_a_chunk_at_a_time_writes_the_same_file(
    example,
    finance,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
) -> None:
    """Rows stream to the builder one chunk at a time; chunking changes nothing."""
    ids = [example.billing1_id, example.billing2_id]
    monkeypatch.setattr(export_batches, "ROW_CHUNK", 1)
    made: list[int] = []
    real = export_batches.export_rows

    def spy(billings, *args, **kwargs):
        made.append(len(billings))
        return real(billings, *args, **kwargs)

    monkeypatch.setattr(export_batches, "export_rows", spy)
    chunked = export_batches.create_batch(finance, fmt, ids, include_vendors=True)
    db.session.commit()
    assert made == [1, 1]  # never more than one chunk's billings at once
    assert chunked.total_amount == D("23700.00") + D("22775.00")
    # The same file as built from all the rows at once.
    rows = real(export_batches.load_billings(ids))
    whole = builders.build(
        fmt,
        [rows[i] for i in ids],
        builders.BatchInfo(chunked.id, chunked.created_at, include_vendors=True),
    )
    assert chunked.content == whole


def test_not_ready_lists_every_billing_and_leaves_nothing_even_on_commit(
    example,
    finance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(export_batches, "ROW_CHUNK", 1)
    project = db.session.get(Project, example.project_id)
    project.erp_job_number = None
    db.session.commit()
    ids = [example.billing1_id, example.billing2_id]
    with pytest.raises(NotReady) as caught:
        export_batches.create_batch(finance, "csv", ids)
    # The file was built in the same pass; its savepoint is gone even if the
    # caller commits what else the request did.
    db.session.commit()
    assert sorted(caught.value.problems) == sorted(ids)
    assert _batches() == 0
    assert db.session.scalar(sa.select(sa.func.count(ExportBatchItem.id))) == 0
    for billing_id in ids:
        assert db.session.get(Billing, billing_id).export_batch_id is None
    assert (
        db.session.scalar(
            sa.select(sa.func.count(AuditEvent.id)).where(
                AuditEvent.action == "export_batch.create"
            )
        )
        == 0
    )


def test_a_batch_file_is_named_after_its_project_period_and_format(
    example, finance
) -> None:
    project = db.session.get(Project, example.project_id)
    billing = db.session.get(Billing, example.billing2_id)
    batch = export_batches.create_batch(finance, "iif", [billing.id])
    assert batch.filename == (
        f"{project.number}-P{billing.period.sequence:02d}-batch-{batch.id:05d}-iif.iif"
    )
    assert export_batches.batch_currencies([batch.id]) == {batch.id: project.currency}


def test_a_batch_never_adds_up_two_currencies(example, finance) -> None:
    """One total, one file, one ERP import: billings in CAD and USD are refused
    together (the total would add dollars to dollars of another kind)."""
    from tests.helpers import bill

    project = db.session.get(Project, example.project_id)
    assert project.currency == "USD"
    canadian = f.make_project(number="9001", currency="CAD")
    commitment = f.make_commitment(canadian, lines=[("03-300", "10000.00")])
    period = f.make_period(canadian, start=example.today, due=example.today)
    admin = db.session.get(User, example.admin_id)
    other = bill(commitment, period, admin, {1: ("1000.00", "")})
    before = _batches()
    with pytest.raises(ExportConflict, match="one currency; these are in CAD and USD"):
        export_batches.create_batch(finance, "csv", [example.billing1_id, other.id])
    assert _batches() == before
