"""Issue 15 item 2: every list sorts by a column header, server-side.

Each list is requested sorted by a column, ascending and descending, over rows
that tie on that column (the id tiebreak then decides, in the same direction);
an unknown ``sort`` falls back to the default order; header links keep the
filters and start at page 1; page links keep the sort and the filters. The
batch list and the ready page never select a batch's stored file.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent, Billing, ExportBatch
from portal.web.sorting import SortSpec

from .. import factories as f
from ..helpers import counting

D = Decimal


@pytest.fixture
def app_config() -> dict:
    return {"PAGE_SIZE": 2}


def _ids(html: str, pattern: str) -> list[int]:
    """The ids ``pattern`` finds in ``html``, first appearance order."""
    seen: list[int] = []
    for found in re.findall(pattern, html):
        if int(found) not in seen:
            seen.append(int(found))
    return seen


@pytest.fixture
def world(app, users, today):
    """Three of each listed thing, two of them tied on the sorted column."""
    t0 = datetime(today.year, today.month, today.day, 9, tzinfo=UTC)
    with app.app_context():
        admin = users["admin"]
        project = f.make_project(number="P-SORT")
        alpha1 = f.make_vendor(name="Alpha One", erp_vendor_code="B-2")
        alpha2 = f.make_vendor(name="Alpha Two", erp_vendor_code="B-1")
        bravo = f.make_vendor(name="Bravo", erp_vendor_code=None)
        # Commitments: titles tie for two of them.
        c1 = f.make_commitment(project, alpha1, number="C-3", title="Same")
        c2 = f.make_commitment(project, alpha2, number="C-1", title="Same")
        c3 = f.make_commitment(project, bravo, number="C-2", title="Other")
        p1 = f.make_period(project, 1, start=today - timedelta(days=60), due=today)
        p2 = f.make_period(
            project, 2, start=today - timedelta(days=30), due=today, status="closed"
        )
        p3 = f.make_period(
            project, 3, start=today, due=today + timedelta(days=20), status="closed"
        )
        billings = []
        for i, (c, submitted) in enumerate(
            [(c1, t0), (c2, t0), (c3, t0 - timedelta(days=1))], start=1
        ):
            b = Billing(
                commitment=c,
                period=p1,
                application_number=1,
                status="under_review",
                created_by_user_id=admin,
                submitted_at=submitted,
                vendor_invoice_number=f"INV-{i}",
            )
            db.session.add(b)
            billings.append(b)
        # Contacts of one vendor: two share a name.
        k1 = f.make_contact(alpha1, name="Kim", email="z@x.example")
        k2 = f.make_contact(alpha1, name="Kim", email="y@x.example")
        k3 = f.make_contact(alpha1, name="Ann", email="x@x.example")
        batches = []
        for fmt, total in [("csv", "10"), ("iif", "10"), ("csv", "5")]:
            batch = ExportBatch(
                format=fmt,
                created_by_id=admin,
                filename=f"batch.{fmt}",
                content_type="text/plain",
                content=b"SECRET-FILE-BYTES" * 10,
                sha256="0" * 64,
                billing_count=1,
                total_amount=D(total),
            )
            db.session.add(batch)
            batches.append(batch)
        events = []
        for n, action in enumerate(["zz.b", "zz.a", "zz.a"], start=1):
            event = AuditEvent(
                actor_type="user",
                actor_user_id=admin,
                action=action,
                object_type="vendor",
                object_id=bravo.id,
                remote_addr=f"10.9.9.{n}",
                created_at=t0 + timedelta(minutes=n),
            )
            db.session.add(event)
            events.append(event)
        db.session.flush()
        out = SimpleNamespace(
            project=project.id,
            vendors=[alpha1.id, alpha2.id, bravo.id],
            commitments=[c1.id, c2.id, c3.id],
            periods=[p1.id, p2.id, p3.id],
            billings=[b.id for b in billings],
            contacts=[k1.id, k2.id, k3.id],
            batches=[b.id for b in batches],
            events=[1, 2, 3],
        )
        db.session.commit()
    return out


def _page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


BILLING = r'href="/admin/billings/(\d+)"'


def test_billings_sort_by_vendor_with_id_tiebreak(auth, client, users, world):
    auth.login_user(users["admin"])
    b1, b2, b3 = world.billings
    # Vendor names: Alpha One (b1), Alpha Two (b2), Bravo (b3).
    html = _page(client, "/admin/billings?sort=vendor")
    assert _ids(html, BILLING) == [b1, b2]  # page 1 of 2 (PAGE_SIZE 2)
    html = _page(client, "/admin/billings?sort=vendor&page=2")
    assert _ids(html, BILLING) == [b3]
    html = _page(client, "/admin/billings?sort=-vendor")
    assert _ids(html, BILLING) == [b3, b2]
    # Submitted ties for b1 and b2: the id breaks it, in the sort's direction.
    html = _page(client, "/admin/billings?sort=submitted")
    assert _ids(html, BILLING) == [b3, b1]
    html = _page(client, "/admin/billings?sort=-submitted")
    assert _ids(html, BILLING) == [b2, b1]
    # The sorted header says so; the others offer their first direction.
    assert 'aria-sort="descending"' in html
    assert html.count("aria-sort=") == 1


@pytest.mark.parametrize("bad", ["nope", "--vendor", "-", "vendor;drop", "x" * 500])
def test_billings_bad_sort_falls_back(auth, client, users, world, bad):
    auth.login_user(users["admin"])
    default = _ids(_page(client, "/admin/billings"), BILLING)
    assert _ids(_page(client, f"/admin/billings?sort={bad}"), BILLING) == default


def test_billings_links_keep_sort_and_filters(auth, client, users, world):
    auth.login_user(users["admin"])
    html = _page(
        client,
        f"/admin/billings?status=under_review&project_id={world.project}"
        "&sort=-vendor&page=1",
    )
    # Header links: the filters, the toggled sort, no page.
    header = re.search(r'data-sort="vendor" href="([^"]+)"', html).group(1)
    assert "status=under_review" in header and f"project_id={world.project}" in header
    assert "sort=vendor" in header and "page=" not in header
    # Page links: the sort and the filters.
    pages = re.findall(r'class="page-link" href="([^"#]+)"', html)
    assert pages and all(
        "sort=-vendor" in p and "status=under_review" in p for p in pages
    )
    # The filter form keeps the sort.
    assert '<input type="hidden" name="sort" value="-vendor">' in html


def test_billings_filters_still_apply_under_sort(auth, client, users, world):
    auth.login_user(users["admin"])
    v3 = world.vendors[2]
    html = _page(client, f"/admin/billings?vendor_id={v3}&sort=-submitted")
    assert _ids(html, BILLING) == [world.billings[2]]
    assert "1 billing(s)" in html


def test_vendors_sort(auth, client, users, world):
    auth.login_user(users["admin"])
    a1, a2, b = world.vendors
    pattern = r'href="/admin/vendors/(\d+)"'
    assert _ids(_page(client, "/admin/vendors"), pattern) == [a1, a2]
    assert _ids(_page(client, "/admin/vendors?sort=-name"), pattern) == [b, a2]
    # ERP code: B-1 (a2), B-2 (a1), none (b) last either way.
    assert _ids(_page(client, "/admin/vendors?sort=code"), pattern) == [a2, a1]
    assert _ids(_page(client, "/admin/vendors?sort=-code"), pattern) == [a1, a2]
    html = _page(client, "/admin/vendors?sort=-code&page=2")
    assert _ids(html, pattern) == [b]
    # Searching keeps the sort.
    html = _page(client, "/admin/vendors?q=alpha&sort=-name")
    assert _ids(html, pattern) == [a2, a1]
    assert '<input type="hidden" name="sort" value="-name">' in html
    assert _ids(_page(client, "/admin/vendors?sort=bogus"), pattern) == [a1, a2]


def test_project_commitments_sort(auth, client, users, world):
    auth.login_user(users["admin"])
    c1, c2, c3 = world.commitments
    url = f"/admin/projects/{world.project}"
    pattern = r'href="/admin/commitments/(\d+)"'
    assert _ids(_page(client, url), pattern) == [c2, c3]  # C-1, C-2
    assert _ids(_page(client, url + "?sort=-number"), pattern) == [c1, c3]
    # Titles: Other (c3), Same (c1), Same (c2).
    assert _ids(_page(client, url + "?sort=title"), pattern) == [c3, c1]
    assert _ids(_page(client, url + "?sort=-title"), pattern) == [c2, c1]
    assert _ids(_page(client, url + "?sort=-vendor"), pattern) == [c3, c2]
    assert _ids(_page(client, url + "?sort=-vendor&q=alpha"), pattern) == [c2, c1]
    assert _ids(_page(client, url + "?sort=nope"), pattern) == [c2, c3]


def test_vendor_page_sorts_contacts_and_commitments(auth, client, users, world):
    auth.login_user(users["admin"])
    k1, k2, k3 = world.contacts
    url = f"/admin/vendors/{world.vendors[0]}"
    pattern = r'href="/admin/contacts/(\d+)"'
    assert _ids(_page(client, url), pattern) == [k3, k1, k2]  # active, by name
    assert _ids(_page(client, url + "?sort=-name"), pattern) == [k2, k1, k3]
    assert _ids(_page(client, url + "?sort=email"), pattern) == [k3, k2, k1]
    html = _page(client, url + "?sort=-name&commitments_sort=-number")
    # Each table's links keep the other table's order.
    header = re.search(r'data-sort="email" href="([^"]+)"', html).group(1)
    assert "commitments_sort=-number" in header and "sort=email" in header
    assert _ids(_page(client, url + "?sort=junk"), pattern) == [k3, k1, k2]


def test_periods_sort(auth, client, users, world):
    auth.login_user(users["admin"])
    p1, p2, p3 = world.periods
    pattern = r'href="/admin/periods/(\d+)"'
    # Default: by project, newest period first.
    assert _ids(_page(client, "/admin/periods"), pattern) == [p3, p2]
    # Due dates: p1 and p2 tie.
    assert _ids(_page(client, "/admin/periods?sort=due"), pattern) == [p1, p2]
    assert _ids(_page(client, "/admin/periods?sort=-due"), pattern) == [p3, p2]
    html = _page(client, "/admin/periods?sort=-due&page=2")
    assert _ids(html, pattern) == [p1]
    # The status filter applies, and page links keep it (they used to drop it).
    html = _page(client, "/admin/periods?status=closed&sort=start")
    assert _ids(html, pattern) == [p2, p3]
    assert _ids(_page(client, "/admin/periods?sort=%00"), pattern) == [p3, p2]


BATCH = r'href="/exports/batches/(\d+)"'


def test_batches_sort_and_filter(auth, client, users, world):
    auth.login_user(users["finance"])
    x1, x2, x3 = world.batches
    assert _ids(_page(client, "/exports/batches"), BATCH) == [x3, x2, x1]
    # Totals: 10 (x1), 10 (x2), 5 (x3).
    assert _ids(_page(client, "/exports/batches?sort=total"), BATCH) == [x3, x1, x2]
    assert _ids(_page(client, "/exports/batches?sort=-total"), BATCH) == [x2, x1, x3]
    assert _ids(_page(client, "/exports/batches?sort=format"), BATCH) == [x1, x3, x2]
    html = _page(client, "/exports/batches?format=csv&sort=-total")
    assert _ids(html, BATCH) == [x1, x3]
    assert _ids(_page(client, "/exports/batches?state=reversed"), BATCH) == []
    assert _ids(_page(client, "/exports/batches?state=live"), BATCH) == [x3, x2, x1]
    assert _ids(_page(client, "/exports/batches?since=2199-01-01"), BATCH) == []
    # Bad filters and sorts are ignored, not a 500.
    html = _page(client, "/exports/batches?format=exe&state=x&since=soon&sort=-x")
    assert _ids(html, BATCH) == [x3, x2, x1]


def test_audit_sort(auth, client, users, world):
    auth.login_user(users["admin"])
    pattern = r"10\.9\.9\.(\d)"
    base = "/admin/audit?action=zz."
    assert _ids(_page(client, base), pattern) == [3, 2]
    assert _ids(_page(client, base + "&sort=when"), pattern) == [1, 2]
    # Actions: zz.a (2), zz.a (3), zz.b (1).
    assert _ids(_page(client, base + "&sort=action"), pattern) == [2, 3]
    assert _ids(_page(client, base + "&sort=-action"), pattern) == [1, 3]
    html = _page(client, base + "&sort=-action&page=2")
    assert _ids(html, pattern) == [2]
    assert _ids(_page(client, base + "&sort=who"), pattern) == [3, 2]


def _file_reads(statements: list[str]) -> list[str]:
    # length(export_batches.content) is the size, computed by the database.
    return [
        s for s in statements if re.search(r"(?<!length\()export_batches\.content\b", s)
    ]


def _api_token(app, user_id: int) -> str:
    from portal.accounts import api_tokens
    from portal.models import User

    with app.app_context():
        _, secret = api_tokens.create_token(db.session.get(User, user_id), "lists")
        db.session.commit()
    return secret


def test_batch_lists_never_select_the_stored_file(app, auth, client, users, world):
    auth.login_user(users["finance"])
    token = _api_token(app, users["finance"])
    for url in [
        "/exports/batches",
        "/exports/batches?sort=-total",
        "/exports/",
        "/exports/api/v1/batches",
    ]:
        with counting(app) as statements:
            response = client.get(url, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, url
        assert any("export_batches" in s for s in statements), url
        assert _file_reads(statements) == [], url
    # The download still reads it (the check above can see a file read).
    with counting(app) as statements:
        response = client.get(f"/exports/batches/{world.batches[0]}/download")
    assert response.data == b"SECRET-FILE-BYTES" * 10
    assert _file_reads(statements)
    # The API list still gives each file's size.
    listing = client.get(
        "/exports/api/v1/batches", headers={"Authorization": f"Bearer {token}"}
    ).get_json()
    assert {b["size"] for b in listing["items"]} == {170}


def test_billing_list_counts_on_the_billings_table(app, auth, client, users, world):
    auth.login_user(users["admin"])
    with counting(app) as statements:
        client.get("/admin/billings?sort=vendor")
    counts = [s for s in statements if "count(" in s.lower()]
    assert counts, statements
    billing_count = [s for s in counts if "FROM billings" in s]
    assert billing_count and all(
        "JOIN" not in s.upper() and "vendors" not in s for s in billing_count
    )


def test_sort_spec_parse() -> None:
    spec = SortSpec({"a": sa.column("a"), "b": sa.column("b")}, "-a", sa.column("id"))
    assert spec.parse({}).arg == "-a"
    assert spec.parse({"sort": "b"}).arg == "b"
    assert spec.parse({"sort": "-b"}).descending
    for bad in ["c", "--b", "", "-", "b-"]:
        assert spec.parse({"sort": bad}).arg == "-a"
    sort = spec.parse({"sort": "b"})
    assert sort.next("b") == "-b" and sort.next("a") == "a"
    assert sort.link_args("a", {"q": "x", "page": 3}) == {"q": "x", "sort": "a"}
    assert sort.url_args({"q": "x", "page": 3}) == {"q": "x", "sort": "b"}
    assert spec.parse({}).url_args({"q": "x"}) == {"q": "x"}
    with pytest.raises(ValueError):
        SortSpec({"a": sa.column("a")}, "z", sa.column("id"))
