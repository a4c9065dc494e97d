"""The data model of SPEC §2 as typed SQLAlchemy 2.0 models.

Rules live in the database where they can: foreign keys, unique keys (partial
unique indexes where a rule applies to live rows only), CHECK constraints where a
sign or a set of values is known. Money is integer cents (:class:`Money`).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from portal.core.statuses import (
    ActorType,
    AttachmentKind,
    BillingStatus,
    ChangeOrderStatus,
    ClaimStatus,
    CommitmentKind,
    CommitmentStatus,
    ContractStatus,
    Currency,
    ExportFormat,
    InvitationStatus,
    LineStatus,
    OutboxStatus,
    PeriodStatus,
    Role,
    values,
)
from portal.dbtypes import Money, Percent, UTCDateTime
from portal.extensions import Base, db
from portal.timeutil import utcnow

ZERO = Decimal("0.00")

if TYPE_CHECKING:
    #: What the type checker sees: the typed declarative base.
    Model = Base
else:
    #: ``db.Model``: the same base with Flask-SQLAlchemy's table naming.
    Model = db.Model


def _in(column: str, enum: Any, name: str | None = None) -> sa.CheckConstraint:
    """A CHECK constraint that ``column`` holds one of the enum's values."""
    allowed = ", ".join(f"'{v}'" for v in values(enum))
    return sa.CheckConstraint(
        f"{column} IN ({allowed})", name=name or f"{column}_valid"
    )


def _money(nullable: bool = False, default: Decimal | None = ZERO) -> Any:
    kwargs: dict[str, Any] = {"nullable": nullable}
    if default is not None:
        kwargs["default"] = default
        kwargs["server_default"] = "0"
    return mapped_column(Money(), **kwargs)


def _created() -> Any:
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)


# --------------------------------------------------------------------- people


class User(UserMixin, Model):
    """A back-office user: admin, finance or viewer (SPEC §1)."""

    __tablename__ = "users"
    __table_args__ = (
        _in("role", Role),
        sa.Index("uq_users_email_lower", sa.func.lower(sa.text("email")), unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    name: Mapped[str] = mapped_column(sa.String(120))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(16))
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    #: Bumped on logout, password change and deactivation: ends every session copy.
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")
    failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _created()

    api_tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")

    @property
    def is_active(self) -> bool:
        return bool(self.active)

    def get_id(self) -> str:
        return f"u:{self.id}:{self.session_version}"

    @property
    def is_staff(self) -> bool:
        return True

    @property
    def is_contact(self) -> bool:
        return False

    def has_role(self, *roles: str) -> bool:
        return self.role in roles

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


class ApiToken(Model):
    """A finance user's API token, stored as a SHA-256 hash (SPEC §7 API)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(80))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(12))
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(back_populates="api_tokens")


# ---------------------------------------------------------- projects & vendors


class Project(Model):
    """A construction project (SPEC §2)."""

    __tablename__ = "projects"
    __table_args__ = (
        _in("currency", Currency),
        sa.CheckConstraint(
            "default_work_retainage_pct BETWEEN 0 AND 1000000", name="work_pct_range"
        ),
        sa.CheckConstraint(
            "default_materials_retainage_pct BETWEEN 0 AND 1000000",
            name="materials_pct_range",
        ),
        sa.CheckConstraint(
            "terminology IS NULL OR terminology IN ('us', 'au', 'ca')",
            name="terminology_valid",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    currency: Mapped[str] = mapped_column(sa.String(3), default="USD")
    address: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    time_zone: Mapped[str] = mapped_column(
        sa.String(64), default="America/New_York", server_default="America/New_York"
    )
    overbilling_allowed: Mapped[bool] = mapped_column(
        default=False, server_default=sa.false()
    )
    late_submissions_allowed: Mapped[bool] = mapped_column(
        default=False, server_default=sa.false()
    )
    retainage_release_allowed: Mapped[bool] = mapped_column(
        default=False, server_default=sa.false()
    )
    default_work_retainage_pct: Mapped[Decimal] = mapped_column(
        Percent(), default=Decimal("10.0000"), server_default="100000"
    )
    default_materials_retainage_pct: Mapped[Decimal] = mapped_column(
        Percent(), default=Decimal("0.0000"), server_default="0"
    )
    #: Overrides the deployment's vocabulary: 'us', 'au' or 'ca'.
    terminology: Mapped[str | None] = mapped_column(sa.String(2))
    erp_job_number: Mapped[str | None] = mapped_column(sa.String(40))
    qb_customer_job: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = _created()
    #: Bumped by every write of the project's own rows (portal.generations).
    cache_gen: Mapped[int] = mapped_column(sa.BigInteger, default=1, server_default="1")

    commitments: Mapped[list[Commitment]] = relationship(
        back_populates="project", order_by="Commitment.number"
    )
    periods: Mapped[list[BillingPeriod]] = relationship(
        back_populates="project", order_by="BillingPeriod.sequence"
    )
    client_contracts: Mapped[list[ClientContract]] = relationship(
        back_populates="project", order_by="ClientContract.number"
    )

    def __repr__(self) -> str:
        return f"<Project {self.number}>"


class Vendor(Model):
    """A subcontractor or supplier company."""

    __tablename__ = "vendors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    address: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    erp_vendor_code: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    created_at: Mapped[datetime] = _created()

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="vendor", order_by="Contact.name"
    )


class Contact(UserMixin, Model):
    """A person at a vendor; signs in by magic link only (SPEC §2, §6)."""

    __tablename__ = "contacts"
    __table_args__ = (
        sa.Index(
            "uq_contacts_vendor_id_email_lower",
            "vendor_id",
            sa.func.lower(sa.text("email")),
            unique=True,
        ),
        sa.Index("ix_contacts_email_lower", sa.func.lower(sa.text("email"))),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    vendor_id: Mapped[int] = mapped_column(sa.ForeignKey("vendors.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    email: Mapped[str] = mapped_column(sa.String(254))
    phone: Mapped[str] = mapped_column(sa.String(40), default="", server_default="")
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    #: Bumped to revoke every link and session of this contact at once.
    token_version: Mapped[int] = mapped_column(default=1, server_default="1")
    created_at: Mapped[datetime] = _created()

    vendor: Mapped[Vendor] = relationship(back_populates="contacts")
    commitments: Mapped[list[Commitment]] = relationship(
        secondary="commitment_contacts", back_populates="contacts"
    )

    @property
    def is_active(self) -> bool:
        return bool(self.active)

    def get_id(self) -> str:
        return f"c:{self.id}:{self.token_version}"

    @property
    def is_staff(self) -> bool:
        return False

    @property
    def is_contact(self) -> bool:
        return True

    def has_role(self, *roles: str) -> bool:
        return False

    @property
    def role(self) -> str:
        return "contact"

    def __repr__(self) -> str:
        return f"<Contact {self.id} {self.email}>"


# ------------------------------------------------------------ upstream contract


class ClientContract(Model):
    """The head contract with the client (upstream)."""

    __tablename__ = "client_contracts"
    __table_args__ = (
        sa.UniqueConstraint("project_id", "number"),
        _in("status", ContractStatus),
        sa.CheckConstraint("work_retainage_pct BETWEEN 0 AND 1000000", name="work_pct"),
        sa.CheckConstraint(
            "materials_retainage_pct BETWEEN 0 AND 1000000", name="materials_pct"
        ),
        sa.CheckConstraint("markup_pct BETWEEN 0 AND 10000000", name="markup_pct"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), index=True)
    number: Mapped[str] = mapped_column(sa.String(40))
    title: Mapped[str] = mapped_column(sa.String(200))
    client_name: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(16), default=ContractStatus.DRAFT)
    work_retainage_pct: Mapped[Decimal] = mapped_column(Percent(), default=Decimal(0))
    materials_retainage_pct: Mapped[Decimal] = mapped_column(
        Percent(), default=Decimal(0)
    )
    markup_pct: Mapped[Decimal] = mapped_column(Percent(), default=Decimal(0))
    created_at: Mapped[datetime] = _created()

    project: Mapped[Project] = relationship(back_populates="client_contracts")
    lines: Mapped[list[ClientSovLine]] = relationship(
        back_populates="contract",
        order_by="ClientSovLine.line_number",
        cascade="all, delete-orphan",
    )


class ClientSovLine(Model):
    """A schedule-of-values line of the client contract."""

    __tablename__ = "client_sov_lines"
    __table_args__ = (
        sa.UniqueConstraint("client_contract_id", "line_number"),
        sa.UniqueConstraint("client_contract_id", "cost_code"),
        sa.CheckConstraint("line_number > 0", name="line_number_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_contract_id: Mapped[int] = mapped_column(
        sa.ForeignKey("client_contracts.id", ondelete="CASCADE")
    )
    line_number: Mapped[int]
    cost_code: Mapped[str] = mapped_column(sa.String(40))
    description: Mapped[str] = mapped_column(sa.String(300))
    scheduled_value: Mapped[Decimal] = _money()

    contract: Mapped[ClientContract] = relationship(back_populates="lines")


class CostCodeMapping(Model):
    """Maps a downstream cost code to a client-contract line (SPEC §9 unmapped amounts)."""

    __tablename__ = "cost_code_mappings"
    __table_args__ = (sa.UniqueConstraint("client_contract_id", "cost_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_contract_id: Mapped[int] = mapped_column(
        sa.ForeignKey("client_contracts.id", ondelete="CASCADE")
    )
    cost_code: Mapped[str] = mapped_column(sa.String(40))
    client_sov_line_id: Mapped[int] = mapped_column(
        sa.ForeignKey("client_sov_lines.id", ondelete="CASCADE"), index=True
    )

    client_sov_line: Mapped[ClientSovLine] = relationship()


# ---------------------------------------------------------- downstream contract

#: The one row of the global change counter (portal.generations).
fragment_generation = sa.Table(
    "fragment_generation",
    db.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("gen", sa.BigInteger, nullable=False, server_default="1"),
)

commitment_contacts = sa.Table(
    "commitment_contacts",
    db.metadata,
    sa.Column(
        "commitment_id",
        sa.ForeignKey("commitments.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "contact_id",
        sa.ForeignKey("contacts.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)


class Commitment(Model):
    """A subcontract or purchase order (downstream)."""

    __tablename__ = "commitments"
    __table_args__ = (
        sa.UniqueConstraint("project_id", "number"),
        _in("status", CommitmentStatus),
        _in("kind", CommitmentKind),
        sa.CheckConstraint("work_retainage_pct BETWEEN 0 AND 1000000", name="work_pct"),
        sa.CheckConstraint(
            "materials_retainage_pct BETWEEN 0 AND 1000000", name="materials_pct"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), index=True)
    vendor_id: Mapped[int] = mapped_column(sa.ForeignKey("vendors.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16), default=CommitmentKind.SUBCONTRACT)
    number: Mapped[str] = mapped_column(sa.String(40))
    title: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(16), default=CommitmentStatus.DRAFT)
    work_retainage_pct: Mapped[Decimal] = mapped_column(Percent(), default=Decimal(0))
    materials_retainage_pct: Mapped[Decimal] = mapped_column(
        Percent(), default=Decimal(0)
    )
    created_at: Mapped[datetime] = _created()
    #: Bumped by every write of the commitment or its rows (portal.generations).
    cache_gen: Mapped[int] = mapped_column(sa.BigInteger, default=1, server_default="1")

    project: Mapped[Project] = relationship(back_populates="commitments")
    vendor: Mapped[Vendor] = relationship()
    sov_lines: Mapped[list[SovLine]] = relationship(
        back_populates="commitment", order_by="SovLine.line_number"
    )
    change_orders: Mapped[list[ChangeOrder]] = relationship(
        back_populates="commitment", order_by="ChangeOrder.number"
    )
    contacts: Mapped[list[Contact]] = relationship(
        secondary=commitment_contacts, back_populates="commitments"
    )
    billings: Mapped[list[Billing]] = relationship(back_populates="commitment")

    def __repr__(self) -> str:
        return f"<Commitment {self.number}>"


class SovLine(Model):
    """A schedule-of-values line of a commitment.

    A line added by a change order has ``original_value`` 0 and counts only once
    that change order is approved (``change_order_id``).
    """

    __tablename__ = "sov_lines"
    __table_args__ = (
        sa.UniqueConstraint("commitment_id", "line_number"),
        sa.CheckConstraint("line_number > 0", name="line_number_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    commitment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("commitments.id", ondelete="CASCADE")
    )
    line_number: Mapped[int]
    cost_code: Mapped[str] = mapped_column(sa.String(40), index=True)
    description: Mapped[str] = mapped_column(sa.String(300))
    original_value: Mapped[Decimal] = _money()
    #: Set when the line was added by a change order.
    change_order_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("change_orders.id"), index=True
    )

    commitment: Mapped[Commitment] = relationship(back_populates="sov_lines")
    added_by: Mapped[ChangeOrder | None] = relationship(foreign_keys=[change_order_id])


class ChangeOrder(Model):
    """A change order on a commitment; only approved ones count (SPEC §2)."""

    __tablename__ = "change_orders"
    __table_args__ = (
        sa.UniqueConstraint("commitment_id", "number"),
        _in("status", ChangeOrderStatus),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    commitment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("commitments.id", ondelete="CASCADE")
    )
    number: Mapped[str] = mapped_column(sa.String(40))
    title: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(
        sa.String(16), default=ChangeOrderStatus.PENDING
    )
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = _created()

    commitment: Mapped[Commitment] = relationship(back_populates="change_orders")
    items: Mapped[list[ChangeOrderItem]] = relationship(
        back_populates="change_order", cascade="all, delete-orphan"
    )


class ChangeOrderItem(Model):
    """One change of a change order: an amount added to a SOV line."""

    __tablename__ = "change_order_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    change_order_id: Mapped[int] = mapped_column(
        sa.ForeignKey("change_orders.id", ondelete="CASCADE"), index=True
    )
    sov_line_id: Mapped[int] = mapped_column(sa.ForeignKey("sov_lines.id"), index=True)
    amount: Mapped[Decimal] = _money(default=None)

    change_order: Mapped[ChangeOrder] = relationship(back_populates="items")
    sov_line: Mapped[SovLine] = relationship()


# ------------------------------------------------------------------- periods


class BillingPeriod(Model):
    """A billing period of a project; one open at a time (SPEC §2)."""

    __tablename__ = "billing_periods"
    __table_args__ = (
        sa.UniqueConstraint("project_id", "sequence"),
        _in("status", PeriodStatus),
        sa.CheckConstraint("end_date >= start_date", name="dates_ordered"),
        sa.CheckConstraint("sequence > 0", name="sequence_positive"),
        sa.Index(
            "uq_billing_periods_one_open",
            "project_id",
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        ),
        # The periods list's date sorts.
        sa.Index("ix_billing_periods_start_date", "start_date"),
        sa.Index("ix_billing_periods_due_date", "due_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"))
    sequence: Mapped[int]
    start_date: Mapped[date]
    end_date: Mapped[date]
    due_date: Mapped[date]
    billing_date: Mapped[date]
    status: Mapped[str] = mapped_column(sa.String(16), default=PeriodStatus.OPEN)
    created_at: Mapped[datetime] = _created()

    project: Mapped[Project] = relationship(back_populates="periods")

    @property
    def label(self) -> str:
        return f"#{self.sequence} {self.start_date:%b %d} – {self.end_date:%b %d, %Y}"


# --------------------------------------------------------- invitations, links


class Invitation(Model):
    """Invite to Bill: one per period, commitment and contact (SPEC §2)."""

    __tablename__ = "invitations"
    __table_args__ = (
        sa.UniqueConstraint("period_id", "commitment_id", "contact_id"),
        _in("status", InvitationStatus),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(sa.ForeignKey("billing_periods.id"))
    commitment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("commitments.id"), index=True
    )
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default=InvitationStatus.INVITED)
    invited_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    sent_at: Mapped[datetime] = _created()
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decline_reason: Mapped[str] = mapped_column(
        sa.String(1000), default="", server_default=""
    )
    last_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    period: Mapped[BillingPeriod] = relationship()
    commitment: Mapped[Commitment] = relationship()
    contact: Mapped[Contact] = relationship()


class LoginLink(Model):
    """A single-use magic link row; the emailed token names it (SPEC §6)."""

    __tablename__ = "login_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    invitation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("invitations.id", ondelete="SET NULL"), index=True
    )
    #: The contact's token_version when the link was made; a bump revokes it.
    token_version: Mapped[int]
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    contact: Mapped[Contact] = relationship()
    invitation: Mapped[Invitation | None] = relationship()


# -------------------------------------------------------------------- billings


class Billing(Model):
    """A subcontractor progress billing (pay application) (SPEC §2, §3)."""

    __tablename__ = "billings"
    __table_args__ = (
        _in("status", BillingStatus),
        sa.CheckConstraint("revision >= 0", name="revision_nonnegative"),
        sa.CheckConstraint("application_number > 0", name="application_positive"),
        sa.CheckConstraint("version > 0", name="version_positive"),
        sa.CheckConstraint("retainage_released >= 0", name="release_nonnegative"),
        sa.CheckConstraint(
            "(created_by_user_id IS NULL) <> (created_by_contact_id IS NULL)",
            name="one_creator",
        ),
        sa.Index(
            "uq_billings_live_per_period",
            "commitment_id",
            "period_id",
            unique=True,
            sqlite_where=sa.text("status <> 'void'"),
            postgresql_where=sa.text("status <> 'void'"),
        ),
        sa.Index(
            "uq_billings_live_application_number",
            "commitment_id",
            "application_number",
            unique=True,
            sqlite_where=sa.text("status <> 'void'"),
            postgresql_where=sa.text("status <> 'void'"),
        ),
        sa.Index("ix_billings_period_status", "period_id", "status"),
        # A commitment's earlier billings (D, line 7, previous billing): the
        # partial unique indexes above can't serve "status IN (...)" on SQLite.
        sa.Index(
            "ix_billings_commitment_application", "commitment_id", "application_number"
        ),
        # The billing list's sorts (newest change first by default).
        sa.Index("ix_billings_updated_at", "updated_at"),
        sa.Index("ix_billings_submitted_at", "submitted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    commitment_id: Mapped[int] = mapped_column(sa.ForeignKey("commitments.id"))
    period_id: Mapped[int] = mapped_column(sa.ForeignKey("billing_periods.id"))
    application_number: Mapped[int]
    vendor_invoice_number: Mapped[str] = mapped_column(
        sa.String(60), default="", server_default=""
    )
    status: Mapped[str] = mapped_column(sa.String(32), default=BillingStatus.DRAFT)
    revision: Mapped[int] = mapped_column(default=0, server_default="0")
    created_by_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_by_contact_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("contacts.id")
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow
    )
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    notes: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    void_reason: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    #: Retainage released by this billing (G702 line 5 reduction).
    retainage_released: Mapped[Decimal] = _money()
    export_batch_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("export_batches.id"), index=True
    )
    client_claim_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("client_claims.id"), index=True
    )
    #: G702/G703 figures frozen at approval (money.figures_to_dict), else NULL.
    approved_figures: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    #: Optimistic lock: every transition is a compare-and-set on it.
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    commitment: Mapped[Commitment] = relationship(back_populates="billings")
    period: Mapped[BillingPeriod] = relationship()
    lines: Mapped[list[BillingLine]] = relationship(
        back_populates="billing", cascade="all, delete-orphan"
    )
    created_by_user: Mapped[User | None] = relationship(
        foreign_keys=[created_by_user_id]
    )
    created_by_contact: Mapped[Contact | None] = relationship(
        foreign_keys=[created_by_contact_id]
    )
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    comments: Mapped[list[Comment]] = relationship(
        back_populates="billing", order_by="Comment.id"
    )
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="billing", order_by="Attachment.id"
    )
    snapshots: Mapped[list[RevisionSnapshot]] = relationship(
        back_populates="billing", order_by="RevisionSnapshot.revision"
    )
    export_batch: Mapped[ExportBatch | None] = relationship(
        foreign_keys=[export_batch_id]
    )
    client_claim: Mapped[ClientClaim | None] = relationship(
        foreign_keys=[client_claim_id]
    )

    def __repr__(self) -> str:
        return f"<Billing {self.id} {self.status} v{self.version}>"


class BillingLine(Model):
    """A billing's line for one SOV line: claimed and approved amounts.

    ``*_materials`` are the materials newly stored this period and
    ``*_installed`` the stored materials installed this period (their value is
    part of ``*_work``); F, the balance presently stored, is computed from the
    previous counted billing's F (SPEC §4, docs/money.md), never typed.
    """

    __tablename__ = "billing_lines"
    __table_args__ = (
        sa.UniqueConstraint("billing_id", "sov_line_id"),
        _in("status", LineStatus),
        sa.CheckConstraint("claimed_materials >= 0", name="claimed_materials_nonneg"),
        sa.CheckConstraint("approved_materials >= 0", name="approved_materials_nonneg"),
        sa.CheckConstraint("claimed_installed >= 0", name="claimed_installed_nonneg"),
        sa.CheckConstraint("approved_installed >= 0", name="approved_installed_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    billing_id: Mapped[int] = mapped_column(
        sa.ForeignKey("billings.id", ondelete="CASCADE")
    )
    sov_line_id: Mapped[int] = mapped_column(sa.ForeignKey("sov_lines.id"), index=True)
    claimed_work: Mapped[Decimal] = _money()
    claimed_materials: Mapped[Decimal] = _money()
    approved_work: Mapped[Decimal] = _money()
    approved_materials: Mapped[Decimal] = _money()
    claimed_installed: Mapped[Decimal] = _money()
    approved_installed: Mapped[Decimal] = _money()
    status: Mapped[str] = mapped_column(sa.String(16), default=LineStatus.PENDING)
    reviewer_comment: Mapped[str] = mapped_column(
        sa.String(2000), default="", server_default=""
    )

    billing: Mapped[Billing] = relationship(back_populates="lines")
    sov_line: Mapped[SovLine] = relationship()


class BillingCarry(Model):
    """What a counted billing carries to the next one (SPEC §4), stored when it
    is decided so the next billing's history is one read, not a sum over every
    earlier billing: line 6 and the effective retainage released to date.

    Its per-line part is :class:`BillingCarryLine`. A counted billing without
    one (none is written outside ``figures.store_carries``) is summed as before.
    """

    __tablename__ = "billing_carries"

    billing_id: Mapped[int] = mapped_column(
        sa.ForeignKey("billings.id", ondelete="CASCADE"), primary_key=True
    )
    #: G702 line 6 (total earned less retainage): the next billing's line 7.
    certificates: Mapped[Decimal] = _money()
    #: Effective retainage released by this and every earlier counted billing.
    released_to_date: Mapped[Decimal] = _money()


class BillingCarryLine(Model):
    """Per SOV line, a counted billing's carry: work completed to date (Σ the
    approved work of the commitment's counted billings up to this one, the next
    billing's D) and F, materials presently stored. NULL where the summing path
    has no entry (no billing line for it yet; not on the frozen sheet)."""

    __tablename__ = "billing_carry_lines"

    billing_id: Mapped[int] = mapped_column(
        sa.ForeignKey("billing_carries.billing_id", ondelete="CASCADE"),
        primary_key=True,
    )
    sov_line_id: Mapped[int] = mapped_column(
        sa.ForeignKey("sov_lines.id"), primary_key=True
    )
    work_to_date: Mapped[Decimal | None] = _money(nullable=True, default=None)
    materials_stored: Mapped[Decimal | None] = _money(nullable=True, default=None)


class Comment(Model):
    """A comment on a billing or one of its lines; kept forever (SPEC §2)."""

    __tablename__ = "comments"
    __table_args__ = (
        sa.CheckConstraint(
            "(author_user_id IS NULL) <> (author_contact_id IS NULL)",
            name="one_author",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    billing_id: Mapped[int] = mapped_column(sa.ForeignKey("billings.id"), index=True)
    billing_line_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("billing_lines.id")
    )
    author_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    author_contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id"))
    revision: Mapped[int] = mapped_column(default=0, server_default="0")
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = _created()

    billing: Mapped[Billing] = relationship(back_populates="comments")
    billing_line: Mapped[BillingLine | None] = relationship()
    author_user: Mapped[User | None] = relationship()
    author_contact: Mapped[Contact | None] = relationship()

    @property
    def author_name(self) -> str:
        if self.author_user is not None:
            return self.author_user.name
        return self.author_contact.name if self.author_contact else "System"


class RevisionSnapshot(Model):
    """The claimed values of every line as submitted in one revision."""

    __tablename__ = "revision_snapshots"
    __table_args__ = (sa.UniqueConstraint("billing_id", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    billing_id: Mapped[int] = mapped_column(
        sa.ForeignKey("billings.id", ondelete="CASCADE")
    )
    revision: Mapped[int]
    submitted_at: Mapped[datetime] = _created()
    #: {"lines": {sov_line_id: {"work": "1.00", "materials": "0.00"}},
    #:  "vendor_invoice_number": ..., "retainage_released": ...}
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)

    billing: Mapped[Billing] = relationship(back_populates="snapshots")


class Attachment(Model):
    """A file attached to a billing, stored outside the web root."""

    __tablename__ = "attachments"
    __table_args__ = (
        _in("kind", AttachmentKind),
        sa.CheckConstraint("size > 0", name="size_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    billing_id: Mapped[int] = mapped_column(sa.ForeignKey("billings.id"), index=True)
    uploaded_by_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    uploaded_by_contact_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("contacts.id")
    )
    original_name: Mapped[str] = mapped_column(sa.String(255))
    stored_name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(16), default=AttachmentKind.OTHER)
    created_at: Mapped[datetime] = _created()

    billing: Mapped[Billing] = relationship(back_populates="attachments")


# ------------------------------------------------------------ upstream claims


class ClientClaim(Model):
    """HC/Client progress claim (owner invoice) for one contract and period (SPEC §9)."""

    __tablename__ = "client_claims"
    __table_args__ = (
        _in("status", ClaimStatus),
        # Live claims only: a draft voided before it was ever submitted gives
        # its number back (SPEC §9: no gaps in what the client sees).
        sa.Index(
            "uq_client_claims_live_number",
            "client_contract_id",
            "claim_number",
            unique=True,
            sqlite_where=sa.text("status <> 'void'"),
            postgresql_where=sa.text("status <> 'void'"),
        ),
        sa.Index(
            "uq_client_claims_live_per_period",
            "client_contract_id",
            "period_id",
            unique=True,
            sqlite_where=sa.text("status <> 'void'"),
            postgresql_where=sa.text("status <> 'void'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_contract_id: Mapped[int] = mapped_column(
        sa.ForeignKey("client_contracts.id")
    )
    period_id: Mapped[int] = mapped_column(
        sa.ForeignKey("billing_periods.id"), index=True
    )
    claim_number: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(16), default=ClaimStatus.DRAFT)
    retainage_released: Mapped[Decimal] = _money()
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = _created()
    generated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When the client was first sent this claim (kept when it goes back to draft).
    first_submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    void_reason: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    #: Figures frozen on submission (money.figures_to_dict), else NULL.
    submitted_figures: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    #: Every downstream source line of the claim (SourceLine.to_dict), frozen on
    #: submission with the figures, else NULL. Large (one entry per downstream
    #: billing line): deferred, so only the trace (figures.trace_sources) loads it.
    submitted_trace: Mapped[list[Any] | None] = mapped_column(sa.JSON, deferred=True)
    #: Unmapped downstream amounts found by the last generation.
    unmapped: Mapped[list[Any] | None] = mapped_column(sa.JSON)
    #: What the claim pages show, stored when the claim is generated, submitted
    #: or approved (portal.upstream.stored): Σ per downstream cost code, the
    #: totals to date, the certificates. Small: never one entry per billing.
    summary: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    contract: Mapped[ClientContract] = relationship()
    period: Mapped[BillingPeriod] = relationship()
    lines: Mapped[list[ClientClaimLine]] = relationship(
        back_populates="claim", cascade="all, delete-orphan"
    )
    billings: Mapped[list[Billing]] = relationship(
        foreign_keys=[Billing.client_claim_id], viewonly=True
    )


class ClientClaimLine(Model):
    """An upstream claim's line for one client-contract SOV line."""

    __tablename__ = "client_claim_lines"
    __table_args__ = (
        sa.UniqueConstraint("client_claim_id", "client_sov_line_id"),
        sa.CheckConstraint("materials_stored >= 0", name="materials_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_claim_id: Mapped[int] = mapped_column(
        sa.ForeignKey("client_claims.id", ondelete="CASCADE")
    )
    client_sov_line_id: Mapped[int] = mapped_column(
        sa.ForeignKey("client_sov_lines.id"), index=True
    )
    #: Generated from downstream billings (with markup).
    generated_work: Mapped[Decimal] = _money()
    generated_materials: Mapped[Decimal] = _money()
    #: Hand adjustments (self-performed work, corrections), each audited.
    adjustment_work: Mapped[Decimal] = _money()
    adjustment_materials: Mapped[Decimal] = _money()
    adjustment_reason: Mapped[str] = mapped_column(
        sa.String(1000), default="", server_default=""
    )
    #: generated + adjustment: what is claimed.
    work_this_period: Mapped[Decimal] = _money()
    materials_stored: Mapped[Decimal] = _money()
    #: What the client approved (NULL until approved).
    client_approved_work: Mapped[Decimal | None] = mapped_column(Money())
    client_approved_materials: Mapped[Decimal | None] = mapped_column(Money())

    claim: Mapped[ClientClaim] = relationship(back_populates="lines")
    client_sov_line: Mapped[ClientSovLine] = relationship()


# --------------------------------------------------------------------- exports


class ExportBatch(Model):
    """An export file for finance: the billings in it and its exact bytes (SPEC §7)."""

    __tablename__ = "export_batches"
    __table_args__ = (
        _in("format", ExportFormat),
        sa.Index("ix_export_batches_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    format: Mapped[str] = mapped_column(sa.String(16))
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = _created()
    filename: Mapped[str] = mapped_column(sa.String(200))
    content_type: Mapped[str] = mapped_column(sa.String(100))
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)
    #: The file's size, computed by the database: lists defer ``content``
    #: (up to megabytes a batch) and still show it.
    content_size: Mapped[int] = column_property(sa.func.length(content))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    billing_count: Mapped[int]
    total_amount: Mapped[Decimal] = _money()
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reversed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reverse_reason: Mapped[str] = mapped_column(sa.Text, default="", server_default="")

    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    reversed_by: Mapped[User | None] = relationship(foreign_keys=[reversed_by_id])
    items: Mapped[list[ExportBatchItem]] = relationship(
        back_populates="batch", cascade="all, delete-orphan"
    )


class ExportBatchItem(Model):
    """A billing in a batch; kept after reversal as history."""

    __tablename__ = "export_batch_items"
    __table_args__ = (sa.UniqueConstraint("batch_id", "billing_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        sa.ForeignKey("export_batches.id", ondelete="CASCADE")
    )
    billing_id: Mapped[int] = mapped_column(sa.ForeignKey("billings.id"), index=True)

    batch: Mapped[ExportBatch] = relationship(back_populates="items")
    billing: Mapped[Billing] = relationship()


class ErpSettings(Model):
    """Deployment-wide ERP accounts (a single row, id 1)."""

    __tablename__ = "erp_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    ap_account: Mapped[str] = mapped_column(
        sa.String(60), default="", server_default=""
    )
    retainage_payable_account: Mapped[str] = mapped_column(
        sa.String(60), default="", server_default=""
    )
    default_expense_account: Mapped[str] = mapped_column(
        sa.String(60), default="", server_default=""
    )
    default_sage_category: Mapped[str] = mapped_column(
        sa.String(20), default="S", server_default="S"
    )
    default_qb_class: Mapped[str] = mapped_column(
        sa.String(60), default="", server_default=""
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow
    )


class ErpCostCode(Model):
    """ERP codes for one cost code: expense account, Sage cost code/category, QB class."""

    __tablename__ = "erp_cost_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    cost_code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    expense_account: Mapped[str] = mapped_column(
        sa.String(60), default="", server_default=""
    )
    sage_cost_code: Mapped[str] = mapped_column(
        sa.String(40), default="", server_default=""
    )
    sage_category: Mapped[str] = mapped_column(
        sa.String(20), default="", server_default=""
    )
    qb_class: Mapped[str] = mapped_column(sa.String(60), default="", server_default="")


# ------------------------------------------------------------ audit and mail


class AuditEvent(Model):
    """Who did what to which object, before and after (SPEC §2)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        _in("actor_type", ActorType),
        sa.Index("ix_audit_events_object", "object_type", "object_id"),
        sa.Index("ix_audit_events_created_at", "created_at"),
        sa.Index("ix_audit_events_actor_user_id", "actor_user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_type: Mapped[str] = mapped_column(sa.String(16))
    actor_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    actor_contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id"))
    action: Mapped[str] = mapped_column(sa.String(60), index=True)
    object_type: Mapped[str] = mapped_column(sa.String(40))
    object_id: Mapped[int | None]
    before: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    remote_addr: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = _created()

    actor_user: Mapped[User | None] = relationship()
    actor_contact: Mapped[Contact | None] = relationship()

    @property
    def actor_name(self) -> str:
        if self.actor_user is not None:
            return self.actor_user.name
        if self.actor_contact is not None:
            return self.actor_contact.name
        return "System"


class OutboxMessage(Model):
    """A mail waiting to be (or already) delivered (SPEC §8)."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        _in("status", OutboxStatus),
        sa.Index("ix_outbox_messages_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    recipient: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(300))
    body_text: Mapped[str] = mapped_column(sa.Text)
    body_html: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    last_error: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    created_at: Mapped[datetime] = _created()
    next_attempt_at: Mapped[datetime] = _created()
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: What caused it, for the admin outbox page (e.g. "invitation", 12).
    object_type: Mapped[str | None] = mapped_column(sa.String(40))
    object_id: Mapped[int | None]
    #: The Message-ID header, the same on every attempt, so a receiver that got
    #: an attempt the worker believes failed (a reply after the timeout) can
    #: drop the repeat. Set when queued (older rows: on their first attempt).
    message_id: Mapped[str | None] = mapped_column(sa.String(250))


class LinkRequest(Model):
    """An address typed into "send me a link", waiting for the mail worker.

    The form only writes this row, for known and unknown addresses alike, so
    both answers take the same work; ``portal send-mail`` looks the address up
    and queues the links (issue 17).
    """

    __tablename__ = "link_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    created_at: Mapped[datetime] = _created()
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


class SignInFailure(Model):
    """Failed staff sign-ins per typed address and client address (SPEC §6).

    Keyed by the email as typed (lower-cased), known or not, so a lock looks
    the same for a made-up address; and by the client's address, so guessing
    from one place never locks the real user out from another (issue 17).
    """

    __tablename__ = "sign_in_failures"
    __table_args__ = (sa.UniqueConstraint("email", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    address: Mapped[str] = mapped_column(sa.String(64))
    failures: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = _created()
