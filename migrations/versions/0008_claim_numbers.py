"""claim numbers without gaps (issue 13 item 4): unique among live claims only,
and when a claim was first sent to the client

Revision ID: 0008_claim_numbers
Revises: 0007_robustness
Create Date: 2026-12-02 01:15:00

"""
import warnings

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0008_claim_numbers"
down_revision = "0007_robustness"
branch_labels = None
depends_on = None

LIVE = sa.text("status <> 'void'")


def _quiet():
    """SQLite's batch mode reflects the tables client_claims refers to; users has
    an expression index (lower(email)) reflection skips with a warning."""
    quiet = warnings.catch_warnings()
    quiet.__enter__()
    warnings.simplefilter("ignore", sa.exc.SAWarning)
    return quiet


def upgrade():
    quiet = _quiet()
    with op.batch_alter_table("client_claims", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_submitted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(
            "uq_client_claims_client_contract_id_claim_number", type_="unique"
        )
        batch_op.create_index(
            "uq_client_claims_live_number",
            ["client_contract_id", "claim_number"],
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        )
    quiet.__exit__(None, None, None)
    # Claims sent before this migration: their first sending is their sending.
    op.execute(
        "UPDATE client_claims SET first_submitted_at = submitted_at "
        "WHERE submitted_at IS NOT NULL"
    )


def downgrade():
    quiet = _quiet()
    with op.batch_alter_table("client_claims", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_client_claims_live_number", sqlite_where=LIVE, postgresql_where=LIVE
        )
        batch_op.create_unique_constraint(
            "uq_client_claims_client_contract_id_claim_number",
            ["client_contract_id", "claim_number"],
        )
        batch_op.drop_column("first_submitted_at")
    quiet.__exit__(None, None, None)
