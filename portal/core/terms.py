"""Terminology dictionaries: the product speaks its user's dialect (issue 8).

Every page, mail and PDF takes its labels from here via ``term(key)`` (a template
global). The deployment's ``TERMINOLOGY`` picks the dictionary; a project may
override it.
"""

from __future__ import annotations

US = {
    "progress_billing": "progress billing",
    "progress_billings": "progress billings",
    "Progress_billing": "Progress billing",
    "Progress_billings": "Progress billings",
    "client_claim": "owner invoice",
    "Client_claim": "Owner invoice",
    "client_claims": "owner invoices",
    "Client_claims": "Owner invoices",
    "retainage": "retainage",
    "Retainage": "Retainage",
    "billing_contact": "billing contact",
    "Billing_contact": "Billing contact",
    "billing_contacts": "billing contacts",
    "Billing_contacts": "Billing contacts",
    "invite_to_bill": "Invite to Bill",
    "administrator": "billing administrator",
    "Administrator": "Billing administrator",
    "client_contract": "prime contract",
    "Client_contract": "Prime contract",
    "billing": "billing",
    "Billing": "Billing",
    "billings": "billings",
    "Billings": "Billings",
    "My_billings": "My billings",
}

AU = US | {
    "progress_billing": "progress claim",
    "progress_billings": "progress claims",
    "Progress_billing": "Progress claim",
    "Progress_billings": "Progress claims",
    "client_claim": "HC/Client progress claim",
    "Client_claim": "HC/Client progress claim",
    "client_claims": "HC/Client progress claims",
    "Client_claims": "HC/Client progress claims",
    "retainage": "retention",
    "Retainage": "Retention",
    "billing_contact": "progress claim contact",
    "Billing_contact": "Progress claim contact",
    "billing_contacts": "progress claim contacts",
    "Billing_contacts": "Progress claim contacts",
    "invite_to_bill": "Invite to Claim",
    "administrator": "progress claim administrator",
    "Administrator": "Progress claim administrator",
    "client_contract": "head contract",
    "Client_contract": "Head contract",
    "billing": "claim",
    "Billing": "Claim",
    "billings": "claims",
    "Billings": "Claims",
    "My_billings": "My claims",
}

CA = US | {
    "retainage": "holdback",
    "Retainage": "Holdback",
}

DICTIONARIES = {"us": US, "au": AU, "ca": CA}


def lookup(key: str, dialect: str | None) -> str:
    """The label for ``key`` in ``dialect`` (US terms when unknown)."""
    words = DICTIONARIES.get((dialect or "us").lower(), US)
    return words.get(key, US.get(key, key.replace("_", " ")))
