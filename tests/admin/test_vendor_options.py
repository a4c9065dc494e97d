"""The vendor filter of the billing list and the review queue: rendered once
per version of the vendors in each worker's page cache (issue 16 item 3: the
list grows with the vendors), and always every vendor, the chosen one marked."""

from __future__ import annotations

import html
import re

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Vendor

from .. import factories as f
from ..helpers import committed

URLS = ("/admin/billings", "/admin/queue")


def _options(client, url: str) -> list[tuple[str, bool, str]]:
    response = client.get(url)
    assert response.status_code == 200, url
    page = response.get_data(as_text=True)
    select = re.search(r'<select[^>]*id="vendor_id".*?</select>', page, re.S)
    assert select, url
    return [
        (value, bool(selected), html.unescape(name))
        for value, selected, name in re.findall(
            r'<option value="(\d*)"( selected)?>([^<]*)</option>', select[0]
        )
    ]


def _expected(app, selected: int | None = None) -> list[tuple[str, bool, str]]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(Vendor.id, Vendor.name).order_by(Vendor.name, Vendor.id)
        ).all()
    return [("", False, "All vendors")] + [
        (str(i), i == selected, name) for i, name in rows
    ]


@pytest.mark.parametrize("url", URLS)
def test_vendor_options_follow_every_vendor_change(app, client, auth, world, url):
    auth.login_user(world.admin_id)
    assert _options(client, url) == _expected(app)
    assert len(_expected(app)) > 2
    vendor_id = _expected(app)[1][0]
    chosen = f"{url}?vendor_id={vendor_id}"
    assert _options(client, chosen) == _expected(app, int(vendor_id))
    assert _options(client, chosen) == _expected(app, int(vendor_id))  # cached

    def rename():
        db.session.get(Vendor, int(vendor_id)).name = "Zeta & Sons <Renamed>"

    committed(app, rename)
    assert _options(client, chosen) == _expected(app, int(vendor_id))
    escaped = f'<option value="{vendor_id}" selected>Zeta &amp; Sons &lt;Renamed&gt;<'
    assert escaped in client.get(chosen).get_data(as_text=True)
    committed(app, lambda: f.make_vendor(name="Aardvark Electric"))
    assert _options(client, url) == _expected(app)
    assert _options(client, url)[1][2] == "Aardvark Electric"
    # The same options with the cache emptied and with it off.
    app.extensions["fragments"].clear()
    assert _options(client, chosen) == _expected(app, int(vendor_id))
    app.config["FRAGMENT_CACHE_BYTES"] = 0
    assert _options(client, chosen) == _expected(app, int(vendor_id))
