"""stored carries: a billing's history read, not re-summed (issue 16 item 2)

A billing's history (D per SOV line, line 7, the releases before it, F of the
previous billing) used to be summed over every earlier counted billing of the
commitment on every request, and the previous billing's frozen JSON parsed.
From now on the carry of each counted billing is stored when it is decided
(``figures.store_carries``): per billing line 6 and the effective retainage
released to date (``billing_carries``), per SOV line the work completed to
date and F (``billing_carry_lines``), all integer cents.

The data step backfills the carry of every counted billing with the rules the
app sums with (``figures.summed_history``): work to date is Σ the approved work
of the commitment's counted billings up to and including it (keys: the SOV
lines any of them has a line for); line 6, the releases and F per SOV line are
read from its frozen figures. A counted billing without frozen figures (none is
made since 0004) gets no carry: the app sums its successor's history as before.

The downgrade drops both tables (the app before 0011 never reads them).

Revision ID: 0011_hist
Revises: 0010_lists
Create Date: 2026-12-03 09:00:00

"""

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0011_hist"
down_revision = "0010_lists"
branch_labels = None
depends_on = None

COUNTED = ("approved", "approved_as_noted", "pending_owner_approval")
CHUNK = 1000

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
    sa.column("billing_id", sa.Integer),
    sa.column("sov_line_id", sa.Integer),
    sa.column("approved_work", sa.BigInteger),
)
carries = sa.table(
    "billing_carries",
    sa.column("billing_id", sa.Integer),
    sa.column("certificates", sa.BigInteger),
    sa.column("released_to_date", sa.BigInteger),
)
carry_lines = sa.table(
    "billing_carry_lines",
    sa.column("billing_id", sa.Integer),
    sa.column("sov_line_id", sa.Integer),
    sa.column("work_to_date", sa.BigInteger),
    sa.column("materials_stored", sa.BigInteger),
)


def upgrade():
    op.create_table(
        "billing_carries",
        sa.Column("billing_id", sa.Integer(), nullable=False),
        sa.Column("certificates", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "released_to_date", sa.BigInteger(), server_default="0", nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["billing_id"],
            ["billings.id"],
            name=op.f("fk_billing_carries_billing_id_billings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("billing_id", name=op.f("pk_billing_carries")),
    )
    op.create_table(
        "billing_carry_lines",
        sa.Column("billing_id", sa.Integer(), nullable=False),
        sa.Column("sov_line_id", sa.Integer(), nullable=False),
        sa.Column("work_to_date", sa.BigInteger(), nullable=True),
        sa.Column("materials_stored", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["billing_id"],
            ["billing_carries.billing_id"],
            name=op.f("fk_billing_carry_lines_billing_id_billing_carries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sov_line_id"],
            ["sov_lines.id"],
            name=op.f("fk_billing_carry_lines_sov_line_id_sov_lines"),
        ),
        sa.PrimaryKeyConstraint(
            "billing_id", "sov_line_id", name=op.f("pk_billing_carry_lines")
        ),
    )
    backfill(op.get_bind())


def downgrade():
    op.drop_table("billing_carry_lines")
    op.drop_table("billing_carries")


def _cents(text):
    return int(Decimal(str(text)).scaleb(2))


def carries_of(bind):
    """The carry of every counted billing with frozen figures, as the app
    stores it: ``(carry rows, carry line rows)`` in integer cents."""
    work_of = {}
    for billing_id, sov_id, work in bind.execute(
        sa.select(lines.c.billing_id, lines.c.sov_line_id, lines.c.approved_work)
        .select_from(lines.join(billings, billings.c.id == lines.c.billing_id))
        .where(billings.c.status.in_(COUNTED))
    ):
        work_of.setdefault(billing_id, []).append((sov_id, int(work or 0)))
    out_carries, out_lines = [], []
    commitment, to_date = None, {}
    for billing_id, commitment_id, snapshot in bind.execute(
        sa.select(billings.c.id, billings.c.commitment_id, billings.c.approved_figures)
        .where(billings.c.status.in_(COUNTED))
        .order_by(billings.c.commitment_id, billings.c.application_number)
    ):
        if commitment_id != commitment:
            commitment, to_date = commitment_id, {}
        for sov_id, work in work_of.get(billing_id, []):
            to_date[sov_id] = to_date.get(sov_id, 0) + work
        if not snapshot or "figures" not in snapshot:
            continue  # the app sums the next billing's history, as before
        figures = snapshot["figures"]
        totals = figures["totals"]
        out_carries.append(
            {
                "billing_id": billing_id,
                "certificates": _cents(totals["total_earned_less_retainage"]),
                "released_to_date": _cents(totals["retainage_released_to_date"]),
            }
        )
        stored = {
            sov_id: _cents(line["materials_stored"])
            for sov_id, line in zip(
                snapshot["sov_line_ids"], figures["lines"], strict=True
            )
        }
        for sov_id in sorted(to_date.keys() | stored.keys()):
            out_lines.append(
                {
                    "billing_id": billing_id,
                    "sov_line_id": sov_id,
                    "work_to_date": to_date.get(sov_id),
                    "materials_stored": stored.get(sov_id),
                }
            )
    return out_carries, out_lines


def backfill(bind):
    """Store the carry of every counted billing that has none."""
    have = {row[0] for row in bind.execute(sa.select(carries.c.billing_id))}
    new_carries, new_lines = carries_of(bind)
    new_carries = [c for c in new_carries if c["billing_id"] not in have]
    new_lines = [c for c in new_lines if c["billing_id"] not in have]
    for table, rows in ((carries, new_carries), (carry_lines, new_lines)):
        for start in range(0, len(rows), CHUNK):
            bind.execute(table.insert(), rows[start : start + CHUNK])
