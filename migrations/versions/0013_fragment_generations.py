"""change generations for the rendered-fragment cache (issue 16 item 2)

``commitments.cache_gen`` and ``projects.cache_gen`` count the writes of a
commitment's and a project's rows, and ``fragment_generation`` (one row) counts
every other shown write; portal.generations bumps them in the writing
transaction and the page cache keys on them (portal.web.fragments).

Revision ID: 0013_frag
Revises: 0012_flat
Create Date: 2026-12-03 14:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0013_frag"
down_revision = "0012_flat"
branch_labels = None
depends_on = None


def upgrade():
    for table in ("commitments", "projects"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column(
                    "cache_gen", sa.BigInteger(), nullable=False, server_default="1"
                )
            )
    generation = op.create_table(
        "fragment_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("gen", sa.BigInteger(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fragment_generation")),
    )
    op.bulk_insert(generation, [{"id": 1, "gen": 1}])


def downgrade():
    op.drop_table("fragment_generation")
    for table in ("projects", "commitments"):
        if op.get_bind().dialect.name == "sqlite":
            # SQLite drops a plain column in place (3.35+); batch mode would
            # rebuild these tables, which the foreign keys to them refuse.
            op.execute(f"ALTER TABLE {table} DROP COLUMN cache_gen")
        else:
            op.drop_column(table, "cache_gen")
