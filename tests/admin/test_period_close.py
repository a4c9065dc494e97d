"""The period close checklist (issue 15 item 6): each blocker with its fix,
the owner-invoice button only when nothing blocks, the race, roles, and a
constant statement count."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from portal import upstream
from portal.billing import close, invitations
from portal.core.statuses import ContractStatus
from portal.extensions import db
from portal.models import (
    Billing,
    BillingPeriod,
    ClientClaim,
    ClientContract,
    Commitment,
    Contact,
    Invitation,
    User,
)

from .. import factories as f
from ..helpers import WORKED_EXAMPLE, Contract, Sub, bill, build_world, counting

LONELY = Sub("lonely", "SC-300", "Lonely Vendor", (("03-300", "10000.00"),))
CONTRACT = Contract(
    (
        ("26-100", "60000"),
        ("26-200", "40000"),
        ("26-300", "25000"),
        ("03-300", "60000"),
    )
)


@pytest.fixture
def w(app, today):
    with app.app_context():
        world = build_world(
            today,
            commitments=(*WORKED_EXAMPLE, LONELY),
            contract=CONTRACT,
            staff=("admin", "finance", "viewer"),
        )
        contract = db.session.get(ClientContract, world.contract_id)
        contract.status = ContractStatus.APPROVED
        db.session.commit()
        db.session.remove()
    return world


def _page(client, w) -> str:
    response = client.get(f"/admin/periods/{w.period1_id}/close-out")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def blockers(html: str) -> dict[str, list[tuple[str, str]]]:
    """kind → [(message, fix href)] of the listed blockers."""
    out: dict[str, list[tuple[str, str]]] = {}
    for kind, body in re.findall(
        r'<li class="[^"]*blocker" data-kind="([a-z_]+)">(.*?)</li>', html, re.S
    ):
        text = re.sub(r"<[^>]+>", " ", body.split('<a class="btn')[0])
        href = re.search(r'<a class="btn[^"]*fix" href="([^"]+)"', body).group(1)
        out.setdefault(kind, []).append((" ".join(text.split()), href))
    return out


def _do(app, fn):
    with app.app_context():
        result = fn()
        db.session.commit()
        db.session.remove()
        return result


def _objs(w):
    admin = db.session.get(User, w.admin_id)
    period = db.session.get(BillingPeriod, w.period1_id)
    return (
        admin,
        period,
        {k: db.session.get(Commitment, v) for k, v in w.commitments.items()},
    )


def _invite(app, w, *keys):
    def run():
        admin, period, cs = _objs(w)
        invitations.invite(period, [cs[k] for k in keys], admin)

    _do(app, run)


def _bill(app, w, key, decide="approve"):
    def run():
        admin, period, cs = _objs(w)
        lines = dict.fromkeys(range(1, len(cs[key].sov_lines) + 1), ("1000.00", "0"))
        return bill(cs[key], period, admin, lines, decide=decide).id

    return _do(app, run)


def _claims(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count(ClientClaim.id)))


def test_each_blocker_has_its_fix_and_goes_when_fixed(app, client, auth, w) -> None:
    auth.login_user(w.admin_id)
    p = w.period1_id
    c = w.commitments
    found = blockers(_page(client, w))
    assert set(found) == {close.NOT_INVITED, close.NO_CONTACT}
    assert [h for _, h in found[close.NOT_INVITED]] == [
        f"/admin/periods/{p}?state=not_invited#row-{c['electric']}",
        f"/admin/periods/{p}?state=not_invited#row-{c['other']}",
    ]
    assert found[close.NO_CONTACT] == [
        (
            "SC-300: no active billing contact Lonely Vendor No billing contact",
            f"/admin/commitments/{c['lonely']}",
        )
    ]

    _invite(app, w, "electric", "other")
    found = blockers(_page(client, w))
    assert [h for _, h in found[close.AWAITING]] == [
        f"/admin/periods/{p}?state=invited#row-{c['electric']}",
        f"/admin/periods/{p}?state=invited#row-{c['other']}",
    ]
    assert close.NOT_INVITED not in found

    def decline():
        inv = db.session.scalar(
            sa.select(Invitation).where(Invitation.contact_id == w.other_contact_id)
        )
        invitations.answer(inv, db.session.get(Contact, w.other_contact_id), False)

    _do(app, decline)
    billing_id = _bill(app, w, "electric", decide="review")
    found = blockers(_page(client, w))
    assert found[close.DECLINED] == [
        (
            "SC-200: every invited contact declined Other Vendor Declined",
            f"/admin/periods/{p}?state=declined#row-{c['other']}",
        )
    ]
    assert found[close.UNDECIDED] == [
        (
            "SC-100: billing #1 waits for a decision Example Electric Under review",
            f"/admin/billings/{billing_id}",
        )
    ]
    assert close.AWAITING not in found
    assert 'id="unblocked"' not in _page(client, w)

    # Fix each: decide the billing, bill the declined one, give SC-300 a
    # contact, invite and bill it.
    def decide():
        admin, _period, _cs = _objs(w)
        b = db.session.get(Billing, billing_id)
        from portal.billing import billings as wf

        reviews = {
            bl.id: wf.LineReview(
                str(bl.claimed_work), str(bl.claimed_materials), "approved", ""
            )
            for bl in b.lines
        }
        wf.review_lines(b, admin, reviews, b.version)
        wf.approve_billing(b, admin, b.version)

    _do(app, decide)
    _bill(app, w, "other")

    def add_contact():
        _admin, _period, cs = _objs(w)
        cs["lonely"].contacts.append(f.make_contact(cs["lonely"].vendor))

    _do(app, add_contact)
    assert set(blockers(_page(client, w))) == {close.NOT_INVITED}
    _invite(app, w, "lonely")
    _bill(app, w, "lonely", decide="draft")
    found = blockers(_page(client, w))
    assert [m for m, _ in found[close.UNDECIDED]] == [
        "SC-300: billing #1 is a draft not yet submitted Lonely Vendor Draft"
    ]

    def submit_and_approve():
        admin, period, cs = _objs(w)
        b = db.session.scalar(
            sa.select(Billing).where(Billing.commitment_id == cs["lonely"].id)
        )
        from portal.billing import billings as wf

        wf.submit_billing(b, admin, b.version)
        reviews = {
            bl.id: wf.LineReview(
                str(bl.claimed_work), str(bl.claimed_materials), "approved", ""
            )
            for bl in b.lines
        }
        wf.review_lines(b, admin, reviews, b.version)
        wf.approve_billing(b, admin, b.version)

    _do(app, submit_and_approve)
    html = _page(client, w)
    assert blockers(html) == {}
    assert 'id="unblocked"' in html
    assert f'action="/admin/periods/{p}/close-out/generate"' in html
    assert re.search(r'id="approved-count">3<', html)


def _all_decided(app, w) -> None:
    _invite(app, w, "electric", "other")

    def add_contact():
        _admin, _period, cs = _objs(w)
        cs["lonely"].contacts.append(f.make_contact(cs["lonely"].vendor))

    _do(app, add_contact)
    _invite(app, w, "lonely")
    for key in ("electric", "other", "lonely"):
        _bill(app, w, key)


def test_the_button_generates_the_owner_invoice(app, client, auth, w) -> None:
    _all_decided(app, w)
    auth.login_user(w.admin_id)
    html = _page(client, w)
    assert blockers(html) == {}
    response = client.post(f"/admin/periods/{w.period1_id}/close-out/generate")
    assert response.status_code == 302
    with app.app_context():
        claim = db.session.scalar(sa.select(ClientClaim))
        assert claim.period_id == w.period1_id
        assert len(claim.billings) == 3
        claim_id = claim.id
    assert response.headers["Location"].endswith(f"/admin/claims/{claim_id}")
    html = _page(client, w)
    assert f'href="/admin/claims/{claim_id}" class="claim-link"' in html
    assert "close-out/generate" not in html
    # A second post (a double click) generates nothing more.
    client.post(f"/admin/periods/{w.period1_id}/close-out/generate")
    assert _claims(app) == 1

    # A commitment added after the claim: listed, to regenerate the draft.
    def late():
        _admin, period, _cs = _objs(w)
        vendor = f.make_vendor(name="Later Vendor")
        f.make_commitment(
            period.project, vendor, [("26-100", "500.00")], [f.make_contact(vendor)]
        )

    _do(app, late)
    html = _page(client, w)
    assert "1 item of this period is still open: once fixed, regenerate" in html
    assert set(blockers(html)) == {close.NOT_INVITED}
    assert "close-out/generate" not in html


def test_a_blocker_that_appears_before_the_post_refuses_it(
    app, client, auth, w
) -> None:
    _all_decided(app, w)
    auth.login_user(w.admin_id)
    assert "close-out/generate" in _page(client, w)

    def new_commitment():
        _admin, period, _cs = _objs(w)
        vendor = f.make_vendor(name="Late Vendor")
        f.make_commitment(
            period.project,
            vendor,
            [("26-100", "500.00")],
            [f.make_contact(vendor)],
            number="SC-400",
        )

    _do(app, new_commitment)
    response = client.post(
        f"/admin/periods/{w.period1_id}/close-out/generate", follow_redirects=True
    )
    html = response.get_data(as_text=True)
    assert "Nothing was generated: 1 item now blocks" in html
    assert _claims(app) == 0
    assert [m for m, _ in blockers(html)[close.NOT_INVITED]] == [
        "SC-400: not invited to bill Late Vendor Not invited"
    ]


def test_a_client_contract_refusal_is_the_generation_refusal(
    app, client, auth, w
) -> None:
    _all_decided(app, w)

    def draft_contract():
        db.session.get(ClientContract, w.contract_id).status = ContractStatus.DRAFT

    _do(app, draft_contract)
    auth.login_user(w.admin_id)
    found = blockers(_page(client, w))
    with app.app_context():
        contract = db.session.get(ClientContract, w.contract_id)
        refusal = upstream.generation_refusal(
            contract, db.session.get(BillingPeriod, w.period1_id)
        )
        number = contract.number
    assert found == {
        close.CONTRACT: [
            (f"{number}: {refusal}", f"/admin/client-contracts/{w.contract_id}")
        ]
    }
    # The generate endpoint refuses it too, with nothing written.
    client.post(f"/admin/periods/{w.period1_id}/close-out/generate")
    assert _claims(app) == 0


def test_viewer_and_finance_read_it_without_the_button(app, client, auth, w) -> None:
    _all_decided(app, w)
    for user_id in (w.viewer_id, w.finance_id):
        auth.login_user(user_id)
        html = _page(client, w)
        assert 'id="unblocked"' in html
        assert "close-out/generate" not in html
        assert "An admin can generate it." in html
        response = client.post(f"/admin/periods/{w.period1_id}/close-out/generate")
        assert response.status_code == 403
    assert _claims(app) == 0


def test_what_is_ready_and_the_links_to_it(app, client, auth, w) -> None:
    _all_decided(app, w)
    auth.login_user(w.viewer_id)
    html = _page(client, w)
    assert re.search(r'id="approved-count">3<', html)
    assert re.search(r'id="approved-total">[^<]*5,000\.00', html)
    # No ERP codes yet: none ready for the default export format, each listed.
    assert re.search(r'id="export-ready">0<', html)
    assert (
        html.count(
            'class="list-group-item d-flex flex-wrap justify-content-between align-items-center gap-2 export-problem"'
        )
        == 3
    )
    assert f"period={w.period1_id}" in re.search(
        r'href="([^"]+)" id="exports-link"', html
    ).group(1)
    dashboard = client.get(f"/admin/periods/{w.period1_id}").get_data(as_text=True)
    assert (
        f'href="/admin/periods/{w.period1_id}/close-out" id="close-checklist-link"'
        in dashboard
    )
    periods = client.get("/admin/periods").get_data(as_text=True)
    assert f'href="/admin/periods/{w.period1_id}/close-out"' in periods


class _Checker(HTMLParser):
    """Balanced elements and unique ids (the page's structure)."""

    VOID = {"area", "br", "col", "hr", "img", "input", "link", "meta", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.ids: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        ids = [v for k, v in attrs if k == "id"]
        self.ids += ids
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


@pytest.mark.parametrize("blocked", [True, False])
def test_the_page_is_well_formed(app, client, auth, w, blocked) -> None:
    if not blocked:
        _all_decided(app, w)
    auth.login_user(w.admin_id)
    checker = _Checker()
    checker.feed(_page(client, w))
    assert checker.errors == [] and checker.stack == []
    assert len(checker.ids) == len(set(checker.ids))


def _grow(app, w, n: int, tag: str) -> None:
    """``n`` more commitments: invited, billed under review, approved, no contact."""

    def run():
        admin, period, _cs = _objs(w)
        for i in range(n):
            vendor = f.make_vendor(name=f"Grown {tag}{i}")
            contacts = [] if i % 4 == 3 else [f.make_contact(vendor)]
            c = f.make_commitment(
                period.project,
                vendor,
                [("26-100", "900.00"), ("26-200", "900.00")],
                contacts,
                number=f"SC-9{tag}{i:02d}",
            )
            if contacts:
                invitations.invite(period, [c], admin)
            if i % 4 == 1:
                bill(c, period, admin, {1: ("10.00", "0")}, decide="review")
            elif i % 4 == 2:
                bill(c, period, admin, {1: ("10.00", "0"), 2: ("5.00", "0")})

    _do(app, run)


def test_the_statement_count_is_constant(app, client, auth, w) -> None:
    auth.login_user(w.admin_id)
    path = f"/admin/periods/{w.period1_id}/close-out"
    client.get(path)
    counts = []
    for tag, n in (("a", 4), ("b", 16)):
        _grow(app, w, n, tag)
        with counting(app) as statements:
            assert client.get(path).status_code == 200
        counts.append(len(statements))
    assert counts[0] == counts[1], counts
