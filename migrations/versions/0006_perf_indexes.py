"""indexes for the pages' filters and joins (SPEC §11)

Revision ID: 0006_perf_indexes
Revises: 0001
Create Date: 2026-11-25 22:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0006_perf_indexes"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("billings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_billings_commitment_application",
            ["commitment_id", "application_number"],
            unique=False,
        )


def downgrade():
    with op.batch_alter_table("billings", schema=None) as batch_op:
        batch_op.drop_index("ix_billings_commitment_application")
