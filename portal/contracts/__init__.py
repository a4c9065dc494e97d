"""Contracts set-up: projects, vendors, contacts, commitments, SOV lines, change
orders and client contracts (SPEC §2), one module per entity.

Every function takes parsed values, checks the rules that need the database,
changes rows, writes audit events and flushes; the view commits once. The names
are re-exported here so a view reads ``contracts.save_project(...)``.
"""

from portal.contracts.change_orders import (
    add_change_order_item,
    approve_change_order,
    create_change_order,
    lines_open_to,
    next_change_order_number,
    remove_change_order_item,
    void_change_order,
)
from portal.contracts.client_contracts import (
    ClientContractInput,
    ClientLineInput,
    add_client_line,
    delete_client_line,
    import_client_lines,
    save_client_contract,
    set_client_contract_status,
    update_client_line,
)
from portal.contracts.commitments import (
    COMMITMENT_MOVES,
    CommitmentInput,
    add_commitment_contact,
    live_billing_count,
    remove_commitment_contact,
    save_commitment,
    set_commitment_status,
)
from portal.contracts.contacts import (
    DUPLICATE_CONTACT,
    ContactInput,
    revoke_links,
    save_contact,
    set_contact_active,
)
from portal.contracts.projects import ProjectInput, save_project
from portal.contracts.sov import (
    SovLineInput,
    add_sov_line,
    delete_sov_line,
    import_sov_lines,
    next_line_number,
    update_sov_line,
)
from portal.contracts.vendors import VendorInput, save_vendor

__all__ = [
    "COMMITMENT_MOVES",
    "ClientContractInput",
    "ClientLineInput",
    "CommitmentInput",
    "ContactInput",
    "DUPLICATE_CONTACT",
    "ProjectInput",
    "SovLineInput",
    "VendorInput",
    "add_change_order_item",
    "add_client_line",
    "add_commitment_contact",
    "add_sov_line",
    "approve_change_order",
    "lines_open_to",
    "create_change_order",
    "next_change_order_number",
    "delete_client_line",
    "delete_sov_line",
    "import_client_lines",
    "import_sov_lines",
    "live_billing_count",
    "next_line_number",
    "remove_change_order_item",
    "remove_commitment_contact",
    "revoke_links",
    "save_client_contract",
    "save_commitment",
    "save_contact",
    "save_project",
    "save_vendor",
    "set_client_contract_status",
    "set_commitment_status",
    "set_contact_active",
    "update_client_line",
    "update_sov_line",
    "void_change_order",
]
