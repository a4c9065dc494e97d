"""indexes for the lists' sorts and filters (issue 15 item 2, issue 16 item 3)

The billing list sorts by ``updated_at`` (its default) or ``submitted_at``; the
periods list by start or due date; the batch list by creation time; the audit
log filters by user. Without these a page of 25 sorted every row.

Revision ID: 0010_lists
Revises: 0009_materials_carry
Create Date: 2026-12-02 15:00:00

"""

from alembic import op

revision = "0010_lists"
down_revision = "0009_materials_carry"
branch_labels = None
depends_on = None

INDEXES = [
    ("billings", "ix_billings_updated_at", ["updated_at"]),
    ("billings", "ix_billings_submitted_at", ["submitted_at"]),
    ("billing_periods", "ix_billing_periods_start_date", ["start_date"]),
    ("billing_periods", "ix_billing_periods_due_date", ["due_date"]),
    ("export_batches", "ix_export_batches_created_at", ["created_at"]),
    ("audit_events", "ix_audit_events_actor_user_id", ["actor_user_id"]),
]


def upgrade():
    for table, name, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade():
    for table, name, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
