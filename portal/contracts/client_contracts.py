"""Set-up of client contracts (SPEC §2): rules, audit events; flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from portal import audit
from portal.contracts.common import (
    CLIENT_LINE_FIELDS,
    CONTRACT_FIELDS,
    ZERO,
    apply_values,
    record_change,
)
from portal.contracts.sov_import import ImportRow
from portal.core.statuses import (
    ClaimStatus,
    ContractStatus,
)
from portal.extensions import db
from portal.models import (
    ClientClaim,
    ClientClaimLine,
    ClientContract,
    ClientSovLine,
    Project,
    User,
)
from portal.validation import FieldErrors, InputError, flush_unique


@dataclass
class ClientContractInput:
    """A client (head) contract form, parsed."""

    number: str
    title: str
    client_name: str
    work_retainage_pct: Decimal
    materials_retainage_pct: Decimal
    markup_pct: Decimal


def _claims_of(contract: ClientContract) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count(ClientClaim.id)).where(
                ClientClaim.client_contract_id == contract.id,
                ClientClaim.status != ClaimStatus.VOID,
            )
        )
        or 0
    )


def save_client_contract(
    actor: User,
    project: Project,
    contract: ClientContract | None,
    data: ClientContractInput,
) -> ClientContract:
    """Create a (draft) client contract or change its header."""
    taken = db.session.scalar(
        sa.select(ClientContract.id).where(
            ClientContract.project_id == project.id,
            sa.func.lower(ClientContract.number) == data.number.lower(),
        )
    )
    if taken and (contract is None or taken != contract.id):
        raise FieldErrors(
            {"number": "This project already has a contract with this number."}
        )
    creating = contract is None
    if contract is None:
        contract = ClientContract(project_id=project.id, status=ContractStatus.DRAFT)
        db.session.add(contract)
        before: dict[str, Any] = {}
    else:
        if _claims_of(contract) and (
            data.work_retainage_pct != contract.work_retainage_pct
            or data.materials_retainage_pct != contract.materials_retainage_pct
            or data.markup_pct != contract.markup_pct
        ):
            raise InputError(
                "Retainage and markup can't change once claims exist on this contract."
            )
        before = audit.snapshot(contract, CONTRACT_FIELDS)
    apply_values(contract, asdict(data))
    flush_unique({"number": "This project already has a contract with this number."})
    if creating:
        audit.record(
            actor,
            "client_contract.create",
            contract,
            after=audit.snapshot(contract, CONTRACT_FIELDS),
        )
    else:
        record_change(
            actor, "client_contract.update", contract, before, CONTRACT_FIELDS
        )
    db.session.flush()
    return contract


def set_client_contract_status(
    actor: User, contract: ClientContract, status: str
) -> None:
    """Approve a draft client contract, or return it to draft (no claims yet)."""
    current = contract.status
    if current == status or status not in {s.value for s in ContractStatus}:
        raise InputError(f"The contract is already {current}.")
    if status == ContractStatus.APPROVED and not contract.lines:
        raise InputError("Add at least one SOV line before approving.")
    if status == ContractStatus.DRAFT and _claims_of(contract):
        raise InputError("This contract has claims and stays approved.")
    contract.status = status
    audit.record(
        actor,
        "client_contract.status",
        contract,
        before={"status": current},
        after={"status": status},
    )
    db.session.flush()


@dataclass
class ClientLineInput:
    """A client-contract SOV line form, parsed."""

    line_number: int
    cost_code: str
    description: str
    scheduled_value: Decimal


def _client_line_conflicts(
    contract: ClientContract, data: ClientLineInput, line_id: int | None
) -> dict[str, str]:
    errors: dict[str, str] = {}
    for other in contract.lines:
        if other.id == line_id:
            continue
        if other.line_number == data.line_number:
            errors["line_number"] = "This line number is already used."
        if other.cost_code.lower() == data.cost_code.lower():
            errors["cost_code"] = "Another line already has this cost code."
    return errors


def _require_contract_draft(contract: ClientContract) -> None:
    if contract.status != ContractStatus.DRAFT:
        raise InputError(
            "The contract's SOV can only change while it is a draft: return it to "
            "draft first."
        )


def add_client_line(
    actor: User, contract: ClientContract, data: ClientLineInput
) -> ClientSovLine:
    """Add a SOV line to a draft client contract."""
    _require_contract_draft(contract)
    errors = _client_line_conflicts(contract, data, None)
    if errors:
        raise FieldErrors(errors)
    line = ClientSovLine(client_contract_id=contract.id, **asdict(data))
    db.session.add(line)
    flush_unique({"line_number": "This line number or cost code is already used."})
    audit.record(
        actor,
        "client_sov_line.create",
        line,
        after=audit.snapshot(line, CLIENT_LINE_FIELDS),
    )
    db.session.flush()
    return line


def update_client_line(actor: User, line: ClientSovLine, data: ClientLineInput) -> None:
    """Change a client-contract SOV line (amounts only while draft)."""
    contract = line.contract
    if contract.status != ContractStatus.DRAFT and (
        data.line_number,
        data.cost_code,
        data.scheduled_value,
    ) != (line.line_number, line.cost_code, line.scheduled_value):
        raise InputError("Only the description can change on an approved contract.")
    errors = _client_line_conflicts(contract, data, line.id)
    if errors:
        raise FieldErrors(errors)
    before = audit.snapshot(line, CLIENT_LINE_FIELDS)
    apply_values(line, asdict(data))
    flush_unique({"line_number": "This line number or cost code is already used."})
    record_change(actor, "client_sov_line.update", line, before, CLIENT_LINE_FIELDS)
    db.session.flush()


def delete_client_line(actor: User, line: ClientSovLine) -> None:
    """Delete a line of a draft client contract that no claim uses."""
    _require_contract_draft(line.contract)
    used = db.session.scalar(
        sa.select(sa.func.count(ClientClaimLine.id)).where(
            ClientClaimLine.client_sov_line_id == line.id
        )
    )
    if used:
        raise InputError("This line is used by client claims.")
    audit.record(
        actor,
        "client_sov_line.delete",
        line,
        before=audit.snapshot(line, CLIENT_LINE_FIELDS),
    )
    db.session.delete(line)
    db.session.flush()


def import_client_lines(
    actor: User, contract: ClientContract, rows: Sequence[ImportRow]
) -> int:
    """Add parsed CSV rows as lines of a draft client contract (all or nothing)."""
    _require_contract_draft(contract)
    for row in rows:
        db.session.add(
            ClientSovLine(
                client_contract_id=contract.id,
                line_number=row.line_number,
                cost_code=row.cost_code,
                description=row.description,
                scheduled_value=row.scheduled_value,
            )
        )
    flush_unique(
        {
            "file": "Some line numbers or cost codes are already used. Nothing was imported."
        }
    )
    audit.record(
        actor,
        "client_sov_line.import",
        contract,
        after={
            "lines": len(rows),
            "total": sum((r.scheduled_value for r in rows), ZERO),
        },
    )
    db.session.flush()
    return len(rows)
