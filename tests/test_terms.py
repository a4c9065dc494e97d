"""Terminology dictionaries (issue 8): pages, mails and PDFs speak the dialect.

The deployment's TERMINOLOGY picks US (progress billing, owner invoice,
retainage, billing contact), AU (progress claim, HC/Client progress claim,
retention, progress claim contact) or CA (progress billing, owner invoice,
holdback); a project's own terminology overrides it. Each test renders a real
page, mail or PDF and checks the visible words.
"""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from portal.billing import billings, invitations
from portal.core import terms
from portal.documents import pdf
from portal.extensions import db
from portal.models import Billing, BillingPeriod, Commitment, OutboxMessage, Project
from portal.web.templating import term

#: Words each dialect must show, and words of the others it must never show.
PRESENT = {
    "us": ["Retainage", "progress billing"],
    "au": ["Retention", "progress claim"],
    "ca": ["Holdback", "progress billing"],
}
ABSENT = {
    "us": ["Retention", "Holdback", "progress claim", "HC/Client"],
    "au": [
        "Retainage",
        "Holdback",
        "progress billing",
        "Owner invoice",
        "billing contact",
    ],
    "ca": ["Retainage", "Retention", "progress claim", "HC/Client"],
}
DIALECTS = sorted(PRESENT)


class _Text(HTMLParser):
    """The visible text of a page: no tags, attributes, scripts or styles."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible(html: str) -> str:
    """Visible text with whitespace collapsed."""
    parser = _Text()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return re.sub(r"\s+", " ", " ".join(p.extract_text() for p in reader.pages))


def assert_dialect(text: str, dialect: str, where: str) -> None:
    """The dialect's words are there; the other dialects' conflicting ones aren't.

    The product's name ("Progress Billings") is a brand, not a term.
    """
    lowered = text.replace("Progress Billings", "").lower()
    for word in PRESENT[dialect]:
        assert word.lower() in lowered, f"{where} ({dialect}) lacks {word!r}"
    for word in ABSENT[dialect]:
        assert word.lower() not in lowered, f"{where} ({dialect}) says {word!r}"


@pytest.fixture(params=DIALECTS)
def dialect(request) -> str:
    return request.param


@pytest.fixture
def app_config(dialect: str) -> dict:
    """The deployment's vocabulary."""
    return {"TERMINOLOGY": dialect}


@pytest.fixture
def submitted(app, world) -> int:
    """World billing 1 (work and materials) submitted by the contact."""
    with app.app_context():
        from portal.models import Contact

        commitment = db.session.get(Commitment, world.commitment_id)
        period = db.session.get(BillingPeriod, world.period1_id)
        contact = db.session.get(Contact, world.contact_id)
        billing = billings.create_billing(commitment, period, contact)
        l1, l2, _ = world.line_ids
        billings.save_billing(
            billing,
            contact,
            billings.BillingInput(lines={l1: ("20,000.00", ""), l2: ("", "6,000.00")}),
            billing.version,
        )
        billings.submit_billing(billing, contact, billing.version)
        db.session.commit()
        billing_id = billing.id
        db.session.remove()
    return billing_id


def test_dictionaries_have_the_same_keys() -> None:
    """Every label exists in every dialect, so no page falls back to a key."""
    for name, words in terms.DICTIONARIES.items():
        assert set(words) == set(terms.US), name
    assert terms.lookup("Retainage", "au") == "Retention"
    assert terms.lookup("Retainage", "ca") == "Holdback"
    assert terms.lookup("Client_claim", "au") == "HC/Client progress claim"
    assert terms.lookup("billing_contact", "au") == "progress claim contact"
    assert terms.lookup("Retainage", "xx") == "Retainage"  # unknown: US


def test_contact_billing_page(client, auth, world, submitted, dialect) -> None:
    auth.login_contact(world.contact_id)
    response = client.get(f"/portal/billings/{submitted}")
    assert response.status_code == 200
    text = visible(response.text)
    assert_dialect(text, dialect, "contact billing page")
    assert f"{terms.lookup('Retainage', dialect)}: 10.00% on work" in text
    assert f"{terms.lookup('Progress_billing', dialect)} #1" in text
    home = visible(client.get("/portal/").text)
    assert f"My {terms.lookup('progress_billings', dialect)}" in home
    assert terms.lookup("My_billings", dialect) in home  # the navigation


def test_admin_review_page(client, auth, world, submitted, dialect) -> None:
    auth.login_user(world.admin_id)
    response = client.get(f"/admin/billings/{submitted}")
    assert response.status_code == 200
    text = visible(response.text)
    assert_dialect(text, dialect, "admin review page")
    assert f"5a {terms.lookup('Retainage', dialect)} on completed work" in text
    assert f"5 Total {terms.lookup('retainage', dialect)} (5a + 5b − 5c)" in text
    assert f"Comment to the {terms.lookup('billing_contact', dialect)}" in text
    # The navigation names the upstream claims in the dialect too.
    assert terms.lookup("Client_claims", dialect) in text
    claims = visible(client.get("/admin/claims").text)
    assert terms.lookup("Client_claims", dialect) in claims
    if dialect == "au":
        assert "Owner invoice" not in claims and "Prime contract" not in claims


def test_invitation_mail(app, world, dialect) -> None:
    with app.app_context():
        from portal.models import User

        period = db.session.get(BillingPeriod, world.period1_id)
        commitment = db.session.get(Commitment, world.commitment_id)
        admin = db.session.get(User, world.admin_id)
        result = invitations.invite(period, [commitment], admin)
        db.session.commit()
        assert len(result.invited) == 1
        message = db.session.scalars(sa.select(OutboxMessage)).one()
        subject, body_text, body_html = (
            message.subject,
            message.body_text,
            message.body_html,
        )
        db.session.remove()
    word = terms.lookup("progress_billing", dialect)
    assert word in subject
    assert f"submit your {word} for:" in body_text
    html = visible(body_html)
    assert f"submit your {word}." in html
    assert f"you are a {terms.lookup('billing_contact', dialect)} on" in html
    assert f"Open my {terms.lookup('billing', dialect)}" in html
    for text in (subject, body_text, html):
        for other in ABSENT[dialect]:
            assert other.lower() not in text.replace("Progress Billings", "").lower()


def test_billing_pdf(app, world, submitted, dialect) -> None:
    with app.app_context():
        data = pdf.billing_pdf(db.session.get(Billing, submitted))
        db.session.remove()
    text = pdf_text(data)
    word = terms.lookup("Retainage", dialect)
    assert f"{terms.lookup('Progress_billing', dialect)} #1" in text
    assert f"5. Total {word.lower()}" in text
    assert f"I {word}" in text  # the G703 column heading
    for other in ABSENT[dialect]:
        if other[0].isupper():  # labels; the PDF has no sentences about contacts
            assert other not in text, (dialect, other)


@pytest.mark.parametrize("dialect", ["us"])
def test_project_overrides_the_deployment(app, client, auth, world, submitted) -> None:
    """A project set to AU speaks AU on its pages, mails and PDFs in a US deployment."""
    with app.app_context():
        project = db.session.get(Project, world.project_id)
        project.terminology = "au"
        db.session.commit()
        assert term("Retainage", project) == "Retention"
        data = pdf.billing_pdf(db.session.get(Billing, submitted))
        db.session.remove()
    assert "I Retention" in pdf_text(data)
    auth.login_contact(world.contact_id)
    text = visible(client.get(f"/portal/billings/{submitted}").text)
    assert "Retention: 10.00% on work" in text
    assert "Progress claim #1" in text
    assert "Retainage" not in text
