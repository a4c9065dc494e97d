"""stored materials carry from billing to billing (issue 13, SPEC §4)

A billing line's ``*_materials`` used to be F itself, typed afresh each month.
From now on it is the materials *newly* stored this period, ``*_installed`` the
stored materials installed this period, and F = F previous + new − installed
(never below 0), F previous being the approved F of the commitment's previous
counted billing (by application number). The data step rewrites every line,
void billings' too, so that each billing keeps the F it had, and adds the
previous/new/installed figures to the frozen snapshots of decided billings, to
both their approved and (where the snapshot holds it, 0008_claim_numbers
onwards) claimed figures; their figures themselves and the frozen SOV do not
change.

The downgrade goes back to F on every line (F previous + new − installed, as
the app computes it) and removes the previous/new/installed keys from every
snapshot (the code before 0009 refuses unknown keys); every billing keeps its
F. What the old columns cannot hold is lost: a line that both stored new
materials and installed stored ones in one period keeps only their net effect,
so upgrading again shows it as new or installed, not both.

Revision ID: 0009_materials_carry
Revises: 0008_claim_numbers
Create Date: 2026-12-02 01:00:00

"""

import warnings
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0009_materials_carry"
down_revision = "0008_claim_numbers"
branch_labels = None
depends_on = None

COUNTED = ("approved", "approved_as_noted", "pending_owner_approval")
#: The snapshot's figure sets: approved (always) and claimed (0008 onwards).
#: Both carry from the previous counted billing's approved F (SPEC §4).
FIGURE_KEYS = ("figures", "claimed_figures")
CARRY_KEYS = ("materials_previous", "materials_new", "materials_installed")

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


def _walk(bind, with_installed):
    """Each commitment's billings, void ones too, in application-number order,
    with their lines: ``(commitment_id, status, billing_id, snapshot, lines)``.

    A void billing keeps its number and the next billing may take it again: at
    one number the uncounted billings come first, so that they, like the app
    (``figures.history``), carry from the counted billing *before* that number.
    """
    columns = [lines.c.id, lines.c.sov_line_id]
    columns += [lines.c.claimed_materials, lines.c.approved_materials]
    if with_installed:
        columns += [lines.c.claimed_installed, lines.c.approved_installed]
    by_billing = {}
    for row in bind.execute(
        sa.select(lines.c.billing_id, *columns).order_by(lines.c.id)
    ).all():
        by_billing.setdefault(row[0], []).append(tuple(row[1:]))
    counted_last = sa.case((billings.c.status.in_(COUNTED), 1), else_=0)
    for billing_id, commitment_id, status, snapshot in bind.execute(
        sa.select(
            billings.c.id,
            billings.c.commitment_id,
            billings.c.status,
            billings.c.approved_figures,
        ).order_by(
            billings.c.commitment_id,
            billings.c.application_number,
            counted_last,
            billings.c.id,
        )
    ).all():
        rows = by_billing.get(billing_id, [])
        yield commitment_id, status, billing_id, snapshot, rows


def _cents(text):
    return int(Decimal(text).scaleb(2))


def _snapshot_f(snapshot):
    """F in cents per SOV line id, as a decided billing's snapshot holds it
    (what the app carries to the next billing: ``figures._carried``)."""
    return {
        sov_id: _cents(line["materials_stored"])
        for sov_id, line in zip(snapshot["sov_line_ids"], snapshot["figures"]["lines"])
    }


def _carry_existing():
    """Turn each stored F into new/installed against the previous counted F."""
    bind = op.get_bind()
    previous: dict[int, int] = {}  # sov_line_id -> F in cents
    commitment = None
    updates = []
    for commitment_id, status, billing_id, snapshot, rows in _walk(bind, False):
        if commitment_id != commitment:
            commitment, previous = commitment_id, {}
        approved_f: dict[int, int] = {}
        for line_id, sov_id, claimed, approved in rows:
            prev = previous.get(sov_id, 0)
            claimed, approved = int(claimed), int(approved)
            approved_f[sov_id] = approved
            updates.append(
                {
                    "line_id": line_id,
                    "claimed_materials": max(claimed - prev, 0),
                    "claimed_installed": max(prev - claimed, 0),
                    "approved_materials": max(approved - prev, 0),
                    "approved_installed": max(prev - approved, 0),
                }
            )
        if status not in COUNTED:
            continue  # it is nobody's previous billing
        if snapshot:
            _fill_snapshot(bind, billing_id, snapshot, previous)
            # Before 0009 a line without a billing line had F = 0, as frozen.
            previous = _snapshot_f(snapshot)
        else:
            previous = approved_f
    _update_lines(bind, updates)


def _update_lines(bind, updates):
    if not updates:
        return
    names = [k for k in updates[0] if k != "line_id"]
    bind.execute(
        lines.update()
        .where(lines.c.id == sa.bindparam("line_id"))
        .values({name: sa.bindparam(name) for name in names}),
        updates,
    )


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


def _fill_snapshot(bind, billing_id, snapshot, previous):
    data = dict(snapshot)  # "sov_line_ids" and the frozen "sov" stay as they are
    for key in FIGURE_KEYS:
        if key in data:
            data[key] = _fill_lines(data[key], data["sov_line_ids"], previous)
    _write_snapshot(bind, billing_id, data)


def _write_snapshot(bind, billing_id, data):
    bind.execute(
        billings.update()
        .where(billings.c.id == billing_id)
        .values(approved_figures=data)
    )


def downgrade():
    _uncarry()
    # SQLite's batch mode reflects the tables billing_lines refers to; users has
    # an expression index (lower(email)) reflection skips with a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        with op.batch_alter_table("billing_lines", schema=None) as batch_op:
            for name in ("approved_installed", "claimed_installed"):
                batch_op.drop_constraint(
                    op.f(f"ck_billing_lines_{name}_nonneg"), type_="check"
                )
                batch_op.drop_column(name)


def _uncarry():
    """Put F back on every line and take the carry keys out of every snapshot."""
    bind = op.get_bind()
    previous: dict[int, int] = {}
    commitment = None
    updates = []
    for commitment_id, status, billing_id, snapshot, rows in _walk(bind, True):
        if commitment_id != commitment:
            commitment, previous = commitment_id, {}
        approved_f = dict(previous)  # a line the billing lacks keeps its F
        for line_id, sov_id, claimed, approved, claimed_in, approved_in in rows:
            prev = previous.get(sov_id, 0)
            approved_f[sov_id] = max(prev + int(approved) - int(approved_in), 0)
            updates.append(
                {
                    "line_id": line_id,
                    "claimed_materials": max(prev + int(claimed) - int(claimed_in), 0),
                    "approved_materials": approved_f[sov_id],
                }
            )
        if snapshot:
            _strip_snapshot(bind, billing_id, snapshot)
        if status in COUNTED:
            previous = _snapshot_f(snapshot) if snapshot else approved_f
    _update_lines(bind, updates)


def _strip_snapshot(bind, billing_id, snapshot):
    data = dict(snapshot)
    for key in FIGURE_KEYS:
        if key in data:
            data[key] = dict(data[key])
            data[key]["lines"] = [
                {k: v for k, v in line.items() if k not in CARRY_KEYS}
                for line in data[key]["lines"]
            ]
    if data != snapshot:
        _write_snapshot(bind, billing_id, data)
