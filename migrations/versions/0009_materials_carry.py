"""stored materials carry from billing to billing (issue 13, SPEC §4)

A billing line's ``*_materials`` used to be F itself, typed afresh each month.
From now on it is the materials *newly* stored this period, ``*_installed`` the
stored materials installed this period, and F = F previous + new − installed
(never below 0). The data step rewrites every line so that each billing keeps
the F it had, and adds the previous/new/installed figures to the frozen
snapshots of decided billings, to both their approved and (where the snapshot
holds it, 0008_claim_numbers onwards) claimed figures; their figures themselves
and the frozen SOV do not change.

Revision ID: 0009_materials_carry
Revises: 0008_claim_numbers
Create Date: 2026-12-02 01:00:00

"""

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0009_materials_carry"
down_revision = "0008_claim_numbers"
branch_labels = None
depends_on = None

COUNTED = ("approved", "approved_as_noted", "pending_owner_approval")


def upgrade():
    bind = op.get_bind()
    for name in ("claimed_installed", "approved_installed"):
        check = f"ck_billing_lines_{name}_nonneg"
        if bind.dialect.name == "sqlite":
            # SQLite adds a column with its CHECK in place (no table copy).
            op.execute(
                f"ALTER TABLE billing_lines ADD COLUMN {name} BIGINT DEFAULT '0' "
                f"NOT NULL CONSTRAINT {check} CHECK ({name} >= 0)"
            )
        else:
            op.add_column(
                "billing_lines",
                sa.Column(name, sa.BigInteger(), server_default="0", nullable=False),
            )
            op.create_check_constraint(op.f(check), "billing_lines", f"{name} >= 0")
    _carry_existing()


def _carry_existing():
    """Turn each stored F into new/installed against the previous counted F."""
    bind = op.get_bind()
    billings = sa.table(
        "billings",
        sa.column("id", sa.Integer),
        sa.column("commitment_id", sa.Integer),
        sa.column("application_number", sa.Integer),
        sa.column("status", sa.String),
        sa.column("approved_figures", sa.JSON),
    )
    lines = sa.table(
        "billing_lines",
        sa.column("id", sa.Integer),
        sa.column("billing_id", sa.Integer),
        sa.column("sov_line_id", sa.Integer),
        sa.column("claimed_materials", sa.BigInteger),
        sa.column("approved_materials", sa.BigInteger),
        sa.column("claimed_installed", sa.BigInteger),
        sa.column("approved_installed", sa.BigInteger),
    )
    rows = bind.execute(
        sa.select(
            billings.c.id,
            billings.c.commitment_id,
            billings.c.status,
            billings.c.approved_figures,
        )
        .where(billings.c.status != "void")
        .order_by(billings.c.commitment_id, billings.c.application_number)
    ).all()
    previous: dict[int, int] = {}  # sov_line_id -> F in cents
    commitment = None
    for billing_id, commitment_id, status, snapshot in rows:
        if commitment_id != commitment:
            commitment, previous = commitment_id, {}
        approved_f: dict[int, int] = {}
        for line in bind.execute(
            sa.select(
                lines.c.id,
                lines.c.sov_line_id,
                lines.c.claimed_materials,
                lines.c.approved_materials,
            ).where(lines.c.billing_id == billing_id)
        ).all():
            prev = previous.get(line.sov_line_id, 0)
            claimed, approved = (
                int(line.claimed_materials),
                int(line.approved_materials),
            )
            approved_f[line.sov_line_id] = approved
            bind.execute(
                lines.update()
                .where(lines.c.id == line.id)
                .values(
                    claimed_materials=max(claimed - prev, 0),
                    claimed_installed=max(prev - claimed, 0),
                    approved_materials=max(approved - prev, 0),
                    approved_installed=max(prev - approved, 0),
                )
            )
        if snapshot and status in COUNTED:
            _fill_snapshot(bind, billings, billing_id, snapshot, previous)
        if status in COUNTED:
            previous = approved_f


#: The snapshot's figure sets: approved (always) and claimed (0008 onwards).
#: Both carry from the previous counted billing's approved F (SPEC §4).
FIGURE_KEYS = ("figures", "claimed_figures")


def _fill_lines(figures, sov_line_ids, previous):
    figures = dict(figures)
    filled = []
    for sov_id, line in zip(sov_line_ids, figures["lines"]):
        line = dict(line)
        if "materials_previous" not in line:
            prev = Decimal(previous.get(sov_id, 0)).scaleb(-2)
            f = Decimal(line["materials_stored"])
            line["materials_previous"] = format(prev.quantize(Decimal("0.01")), "f")
            line["materials_new"] = format(max(f - prev, Decimal("0.00")), ".2f")
            line["materials_installed"] = format(max(prev - f, Decimal("0.00")), ".2f")
        filled.append(line)
    figures["lines"] = filled
    return figures


def _fill_snapshot(bind, billings, billing_id, snapshot, previous):
    data = dict(snapshot)  # "sov_line_ids" and the frozen "sov" stay as they are
    for key in FIGURE_KEYS:
        if key in data:
            data[key] = _fill_lines(data[key], data["sov_line_ids"], previous)
    bind.execute(
        billings.update()
        .where(billings.c.id == billing_id)
        .values(approved_figures=data)
    )


def downgrade():
    with op.batch_alter_table("billing_lines", schema=None) as batch_op:
        for name in ("approved_installed", "claimed_installed"):
            batch_op.drop_constraint(
                op.f(f"ck_billing_lines_{name}_nonneg"), type_="check"
            )
            batch_op.drop_column(name)
