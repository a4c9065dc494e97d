"""The review page from the rendered-page cache (issue 16 item 2): after every
change, over two months, the page served is the page a fresh render gives; each
viewer has their own; a page opened from the review queue is never cached."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Commitment, Contact, SovLine, User

from .. import factories as f
from ..helpers import cached_get, check_cached, committed
from .test_review import _version, create_billing, decide, enter, open_period_2

pytestmark = pytest.mark.calendar
D = Decimal


def test_cached_review_is_the_fresh_review_after_every_change(
    app, client, auth, world
) -> None:
    w = world
    l1, l2, l3 = w.line_ids
    auth.login_user(w.admin_id)
    b1 = create_billing(client, w.commitment_id, w.period1_id)
    url = f"/admin/billings/{b1}"
    assert enter(app, client, b1, {l1: ("5000", "0")}, action="save").status_code == 302
    check_cached(app, client, url)
    assert enter(app, client, b1, {l1: ("6000", "0")}).status_code == 302
    assert "6,000.00" in check_cached(app, client, url)
    # The line review saved, then a comment, then approved as noted.
    assert (
        decide(
            app, client, b1, "save", {l1: ("5500", "0", "approved", "measured")}
        ).status_code
        == 302
    )
    assert "measured" in check_cached(app, client, url)
    assert decide(app, client, b1, "approve", comment="Looks right").status_code == 302
    assert "Looks right" in check_cached(app, client, url)
    assert "5,500.00" in check_cached(app, client, f"{url}?changed=1")

    def renames():
        db.session.get(Contact, w.contact_id).name = "Renamed Contact"
        commitment = db.session.get(Commitment, w.commitment_id)
        commitment.vendor.name = "Renamed Vendor Inc"

    committed(app, renames)
    page = check_cached(app, client, url)
    assert "Renamed Vendor Inc" in page

    # Writes that leave the billing's own row (and version) alone.
    def comment_and_file():
        from portal.billing import billings
        from portal.models import Billing

        billing = db.session.get(Billing, b1)
        billings.add_comment(billing, db.session.get(User, w.admin_id), "Paid late")
        f.make_attachment(
            b1, b"%PDF-1.4 x", "b" * 32 + ".pdf", original_name="lien.pdf"
        )

    version = _version(app, b1)
    committed(app, comment_and_file)
    assert _version(app, b1) == version
    page = check_cached(app, client, url)
    assert "Paid late" in page and "lien.pdf" in page

    # Month 2: a change order, then billing 2 shows billing 1 as previous work.
    def change_order():
        commitment = db.session.get(Commitment, w.commitment_id)
        f.approve_change_order(commitment, db.session.get(SovLine, l2), "2500")

    committed(app, change_order)
    check_cached(app, client, url)
    open_period_2(app, client, w.project_id, w.period1_id)
    period2 = committed(
        app,
        lambda: db.session.get(Commitment, w.commitment_id).project.periods[-1].id,
    )
    b2 = create_billing(client, w.commitment_id, period2)
    assert enter(app, client, b2, {l2: ("1000", "0")}).status_code == 302
    second = f"/admin/billings/{b2}"
    assert "5,500.00" in check_cached(app, client, second)
    assert (
        decide(app, client, b2, "send_back", comment="Line 2 too high").status_code
        == 302
    )
    check_cached(app, client, second)
    check_cached(app, client, url)


def test_each_viewer_has_their_own_page(app, client, auth, world, as_role) -> None:
    w = world
    auth.login_user(w.admin_id)
    b1 = create_billing(client, w.commitment_id, w.period1_id)
    url = f"/admin/billings/{b1}"
    _, admin_page = cached_get(client, url)

    def same_name():
        from portal.models import User as U

        viewers = db.session.scalars(sa.select(U).where(U.role == "viewer")).all()
        for viewer in viewers:
            viewer.name = db.session.get(U, w.admin_id).name

    committed(app, same_name)
    auth.login_user(w.admin_id)
    cached_get(client, url)
    as_role("viewer")
    state, viewer_page = cached_get(client, url)
    assert state == "miss"
    assert admin_page != viewer_page

    def rename():
        user = db.session.get(User, w.admin_id)
        user.name = "Chief Reviewer"

    committed(app, rename)
    auth.login_user(w.admin_id)
    state, page = cached_get(client, url)
    assert state == "miss" and "Chief Reviewer" in page


def test_from_the_queue_is_never_cached(app, client, auth, world) -> None:
    w = world
    auth.login_user(w.admin_id)
    b1 = create_billing(client, w.commitment_id, w.period1_id)
    for _ in range(2):
        state, _ = cached_get(client, f"/admin/billings/{b1}?queue=status%3Ddraft")
        assert state is None
