"""The billing form keeps the contact's place (issue 14 item 6): a refused save
lists the lines in error at the top, each a link to its field (the message
stays beside the field); a save comes back at the line or section the contact
was on (``place`` → a fragment of this billing's form only); the upload and
comment forms come back at their section; the bar shows the payment due."""

from __future__ import annotations

import re

import pytest

from portal.extensions import db
from portal.models import SovLine

from .conftest import form_for, version_of

pytestmark = pytest.mark.calendar


@pytest.fixture
def draft(app, client, auth, w, make_billing):
    billing_id = make_billing(w)
    auth.login_contact(w.contact_id)
    return billing_id


def _descriptions(app, w) -> list[str]:
    with app.app_context():
        out = [db.session.get(SovLine, sov_id).description for sov_id in w.line_ids]
        db.session.remove()
    return out


def _error_list(html: str) -> list[tuple[str, str]]:
    block = re.search(r'<ul[^>]*id="form-errors">(.*?)</ul>', html, re.S)
    assert block is not None, "no list of the fields in error"
    return re.findall(
        r'<a class="alert-link" href="#([^"]+)">([^<]*)</a>', block.group(1)
    )


def test_a_refused_save_lists_the_lines_in_error_with_links(
    app, client, w, draft
) -> None:
    l1, l2, l3 = w.line_ids
    d1, d2, _ = _descriptions(app, w)
    data = form_for(w, version_of(app, draft), "save", l1w="12x", l2m="-5", l3w="100")
    response = client.post(f"/portal/billings/{draft}", data=data)
    assert response.status_code == 422
    html = response.text
    assert _error_list(html) == [
        (f"line-{l1}-work", f"Line 1 {d1}, work this period"),
        (f"line-{l2}-materials", f"Line 2 {d2}, new materials stored"),
    ]
    assert "2 lines to correct:" in html
    # Each link has its target, and the message stays beside the field.
    for name in (f"line-{l1}-work", f"line-{l2}-materials"):
        assert f'id="{name}" name="{name}"' in html
        assert f'id="{name}-error"' in html
    assert "This amount cannot be negative." in html.split('id="form-errors"')[1]
    # The line's card is marked (and is an anchor itself).
    assert re.search(rf'<tr id="line-{l2}" [^>]*class="[^"]*has-error', html)
    assert not re.search(rf'<tr id="line-{l3}" [^>]*class="[^"]*has-error', html)


def test_a_refused_field_outside_the_lines_is_listed_too(app, client, w, draft) -> None:
    data = form_for(
        w, version_of(app, draft), "save", l1w="10", vendor_invoice_number="X" * 61
    )
    response = client.post(f"/portal/billings/{draft}", data=data)
    assert response.status_code == 422
    assert _error_list(response.text) == [
        ("vendor_invoice_number", "Your invoice number")
    ]
    assert "to correct:" not in response.text


@pytest.mark.parametrize(
    ("place", "fragment"),
    [
        ("line-{l2}", "#line-{l2}"),
        ("details", "#details"),
        ("", ""),
        ("line-2147483647", ""),  # not a line of this billing
        ("attachments", ""),
        ("line-{l2}#x", ""),
        ("javascript:alert(1)", ""),
    ],
)
def test_a_save_comes_back_at_the_place(app, client, w, draft, place, fragment) -> None:
    l2 = w.line_ids[1]
    data = form_for(w, version_of(app, draft), "save", l1w="10")
    data["place"] = place.format(l2=l2)
    response = client.post(f"/portal/billings/{draft}", data=data)
    assert response.status_code == 302
    assert response.headers[
        "Location"
    ] == f"/portal/billings/{draft}" + fragment.format(l2=l2)


def test_a_submit_opens_at_the_top(app, client, w, draft) -> None:
    data = form_for(w, version_of(app, draft), "submit", l1w="10")
    data["place"] = f"line-{w.line_ids[1]}"
    response = client.post(f"/portal/billings/{draft}", data=data)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/portal/billings/{draft}"


def test_the_page_has_its_anchors_and_the_bar(app, client, w, draft) -> None:
    html = client.get(f"/portal/billings/{draft}").text
    for sov_id in w.line_ids:
        assert f'<tr id="line-{sov_id}" data-sov="{sov_id}"' in html
    assert 'id="details"' in html
    assert '<input type="hidden" name="place" value="">' in html
    # Upload and comment (which reload the page) come back at their section,
    # a refused one too (the message is beside its field there).
    assert f'action="/portal/billings/{draft}/attachments#attachments"' in html
    assert f'action="/portal/billings/{draft}/comments#comments"' in html
    bar = re.search(r'<div class="billing-bar" id="billing-bar".*?</div>', html, re.S)
    assert bar is not None
    assert 'id="bar-due">$0.00<' in bar.group(0)
    assert 'form="billing-form" name="action" value="save"' in bar.group(0)
    # Only one field of each name: the bar and the cards reuse the form's inputs.
    names = re.findall(r'<(?:input|textarea|select)[^>]* name="([^"]+)"', html)
    form_names = [n for n in names if n.startswith("line-")]
    assert len(form_names) == len(set(form_names)) == 3 * len(w.line_ids)
