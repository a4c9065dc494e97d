"""client claims keep a small stored summary (issue 16 item 3)

The claim view and the claims of a period re-gathered every downstream billing
and re-read every earlier claim's frozen trace to show a reconciliation; they now
read ``client_claims.summary`` (portal.upstream.stored), written when a claim is
generated, submitted or approved. Submitted and approved claims are backfilled
from their frozen figures and trace (what later claims read from them); drafts
get theirs when next generated (until then the pages compute as before).

Revision ID: 0012_flat
Revises: 0011_hist
Create Date: 2026-12-03 09:00:00

"""

import json
import warnings
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0012_flat"
down_revision = "0011_hist"
branch_labels = None
depends_on = None


def _backfill(data):
    """The parts of a summary a counting claim's frozen JSON holds."""
    out = {"v": 1}
    trace = data.get("trace")
    if trace is not None:
        work = sum(
            (
                Decimal(str(item["work"]))
                for item in trace
                if item.get("client_sov_line_id") is not None
            ),
            Decimal("0.00"),
        )
        out["mapped_work"] = str(work.quantize(Decimal("0.01")))
    certificates = {}
    for key, which in (("figures", "claimed"), ("approved_figures", "approved")):
        figures = data.get(key)
        if figures:
            certificates[which] = figures["totals"]["total_earned_less_retainage"]
    out["certificates"] = certificates
    return out


def upgrade():
    with op.batch_alter_table("client_claims") as batch:
        batch.add_column(sa.Column("summary", sa.JSON(), nullable=True))
    bind = op.get_bind()
    claims = sa.table(
        "client_claims",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("submitted_figures", sa.JSON),
        sa.column("summary", sa.JSON),
    )
    rows = bind.execute(
        sa.select(claims.c.id, claims.c.submitted_figures).where(
            claims.c.status.in_(["submitted", "approved"]),
            claims.c.submitted_figures.is_not(None),
        )
    ).all()
    for claim_id, data in rows:
        if isinstance(data, str):
            data = json.loads(data)
        bind.execute(
            claims.update()
            .where(claims.c.id == claim_id)
            .values(summary=_backfill(data))
        )


def downgrade():
    # SQLite's batch mode reflects the tables client_claims refers to; users has
    # an expression index (lower(email)) reflection skips with a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        with op.batch_alter_table("client_claims") as batch:
            batch.drop_column("summary")
