"""a submitted claim's trace in its own, deferred column (issue 16 item 3)

``client_claims.submitted_figures`` held, besides the claim's small frozen
figures, the key ``"trace"``: every downstream source line of the claim (one
entry per downstream billing line, megabytes on a large project). Every page
that needs only the figures (the claim view, the claims of a period, the PDF)
loaded and parsed it. The trace moves to ``client_claims.submitted_trace``,
which the model defers: only the trace itself (``figures.trace_sources``)
reads it.

The data step moves every claim's ``"trace"`` into the new column and removes
the key from its figures, in batches of ids; the downgrade puts it back.

Revision ID: 0014_claim_trace
Revises: 0013_frag
Create Date: 2026-12-03 18:30:00

"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0014_claim_trace"
down_revision = "0013_frag"
branch_labels = None
depends_on = None

CHUNK = 200

claims = sa.table(
    "client_claims",
    sa.column("id", sa.Integer),
    sa.column("submitted_figures", sa.JSON),
    sa.column("submitted_trace", sa.JSON),
)


def _loaded(data):
    # A JSON value some drivers hand back as text (never on SQLite/psycopg 3).
    return json.loads(data) if isinstance(data, str) else data


def _batches(bind, column):
    """Ids of the claims with a non-NULL ``column``, ``CHUNK`` at a time (by id:
    the rows read in one batch are the only ones in memory)."""
    after = 0
    while True:
        ids = list(
            bind.scalars(
                sa.select(claims.c.id)
                .where(column.is_not(None), claims.c.id > after)
                .order_by(claims.c.id)
                .limit(CHUNK)
            )
        )
        if not ids:
            return
        yield ids
        after = ids[-1]


def move_out(bind):
    """Every ``submitted_figures["trace"]`` into ``submitted_trace``."""
    for ids in _batches(bind, claims.c.submitted_figures):
        rows = bind.execute(
            sa.select(claims.c.id, claims.c.submitted_figures).where(
                claims.c.id.in_(ids)
            )
        ).all()
        for claim_id, data in rows:
            data = _loaded(data)
            if not isinstance(data, dict) or "trace" not in data:
                continue
            trace = data.pop("trace")
            bind.execute(
                claims.update()
                .where(claims.c.id == claim_id)
                .values(submitted_figures=data, submitted_trace=trace)
            )


def move_back(bind):
    """Every ``submitted_trace`` back into ``submitted_figures["trace"]``."""
    for ids in _batches(bind, claims.c.submitted_trace):
        rows = bind.execute(
            sa.select(
                claims.c.id, claims.c.submitted_figures, claims.c.submitted_trace
            ).where(claims.c.id.in_(ids))
        ).all()
        for claim_id, data, trace in rows:
            data = _loaded(data)
            if isinstance(data, dict):  # a trace without figures meant nothing
                data = {**data, "trace": _loaded(trace)}
            bind.execute(
                claims.update()
                .where(claims.c.id == claim_id)
                .values(submitted_figures=data, submitted_trace=None)
            )


def upgrade():
    with op.batch_alter_table("client_claims") as batch:
        batch.add_column(sa.Column("submitted_trace", sa.JSON(), nullable=True))
    move_out(op.get_bind())


def downgrade():
    move_back(op.get_bind())
    # ALTER TABLE … DROP COLUMN, on SQLite too (3.35+): a batch copy of
    # client_claims drops the table its claim lines and billings refer to,
    # which the app's enforced foreign keys refuse once claims exist.
    with op.batch_alter_table("client_claims", recreate="never") as batch:
        batch.drop_column("submitted_trace")
