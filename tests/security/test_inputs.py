"""Hostile input on every form and API endpoint (SPEC §5): never a 500, a clear
4xx or form error with nothing written, and what is stored round-trips.

The generic walk: for each endpoint that takes a POST, sign in as its user,
open the page whose form posts there (found by reading every page's HTML),
and post the form again and again with one field at a time replaced by a
hostile value. After each answer the database is read back.
"""

from __future__ import annotations

import email
import json
import re
from decimal import Decimal
from urllib.parse import urlencode, urlsplit

import pytest
import sqlalchemy as sa

from portal.billing import billings
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Billing,
    BillingLine,
    ExportBatch,
    OutboxMessage,
    Project,
    User,
    Vendor,
)

from . import crawl, forms, fuzz

POST_ENDPOINTS = forms.post_endpoints()
#: Tables an error answer may still change, per endpoint (and why).
MAY_CHANGE_ON_ERROR = {
    # A failed sign-in is counted per email and address and audited (lockout).
    "admin.login": ("n_audit_events", "n_sign_in_failures"),
}
ERROR_FLASHES = {"danger", "warning", "error"}


def _pop_flashes(client) -> list[tuple[str, str]]:
    with client.session_transaction() as sess:
        return list(sess.pop("_flashes", []))


def _dedupe(names: list[str]) -> list[str]:
    """One field per repeated pattern (cc-0-code, cc-1-code… → cc-0-code)."""
    seen, out = set(), []
    for name in names:
        key = re.sub(r"[0-9]+", "#", name)
        if key not in seen:
            seen.add(key)
            out.append(name)
    return out


#: Which hostile families each kind of field gets: every text family for text
#: boxes; numbers (ids, versions, choices, dates) for the others; every amount
#: form of SPEC §5 for amount and percentage fields.
FAMILIES = {
    "text": ([*fuzz.TEXT_PAYLOADS], ["int-overflow"]),
    "other": (["markup", "controls", "long"], [*fuzz.NUMBER_PAYLOADS]),
    "flag": (["markup"], ["int-overflow"]),
    "amount": (["markup", "long"], [*fuzz.NUMBER_PAYLOADS]),
    "percent": (["markup", "long"], [*fuzz.NUMBER_PAYLOADS]),
}


def _cases(kind: str) -> list[tuple[str, str, str | None]]:
    """(case name, value, marker) for a field of ``kind``."""
    texts, numbers = FAMILIES[kind]
    out: list[tuple[str, str, str | None]] = []
    for name in texts:
        mark = fuzz.marker()
        out.append((name, fuzz.TEXT_PAYLOADS[name](mark), mark))
    for name in numbers:
        out.append((name, fuzz.NUMBER_PAYLOADS[name], None))
    forms_of_kind = {"amount": fuzz.AMOUNT_FORMS, "percent": fuzz.PERCENT_FORMS}
    for value in forms_of_kind.get(kind, {}):
        out.append((f"{kind} {value}", value, None))
    return out


def _shown_pages(client, response, url: str) -> list[str]:
    """The pages a person sees after the post: the redirect target and the form page."""
    pages = []
    location = response.headers.get("Location")
    if location and not urlsplit(location).netloc:
        pages.append(location)
    pages.append(url)
    out = []
    for page in pages:
        answer = client.get(page)
        assert answer.status_code < 500, page
        if "html" in answer.headers.get("Content-Type", ""):
            out.append(answer.get_data(as_text=True))
    return out


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS)
def test_hostile_values_in_every_field(app, client, auth, ids, tally, endpoint) -> None:
    """Every field of the endpoint's form, every hostile family: no 500, no partial
    write, stored text round-trips and is shown escaped."""
    found = forms.current_form(app, client, auth, ids, endpoint)
    assert found is not None, f"no page of the full world shows a form for {endpoint}"
    url, role, form = found
    kinds = forms.field_kinds(form)
    names = _dedupe(list(kinds)) or ["unexpected_field"]
    kinds.setdefault("unexpected_field", "text")
    problems: list[str] = []
    tried = 0
    crawl.sign_in(auth, ids, role)
    with app.app_context():
        before = fuzz.fingerprint()
        db.session.remove()
    for n, name in enumerate(names):
        for case, value, mark in _cases(kinds[name]):
            data = forms.filled(form, n)
            data[name] = value
            response = client.post(form.action or url, data=data)
            tried += 1
            where = f"{endpoint} {name} [{case}]"
            assert response.status_code < 500, where
            flashes = _pop_flashes(client)
            error = response.status_code >= 400 or any(
                category in ERROR_FLASHES for category, _ in flashes
            )
            with app.app_context():
                after = fuzz.fingerprint()
                hits = fuzz.stored_with(mark) if mark else []
                db.session.remove()
            if error:
                diff = fuzz.changed(
                    before, after, MAY_CHANGE_ON_ERROR.get(endpoint, ())
                )
                if diff:
                    problems.append(f"{where}: refused but wrote {diff}")
                if hits:
                    problems.append(f"{where}: refused but stored {hits[0][:2]}")
                before = after
                continue
            before = after
            table = {"amount": fuzz.AMOUNT_FORMS, "percent": fuzz.PERCENT_FORMS}
            if table.get(kinds[name], {}).get(value) is False:
                problems.append(f"{where}: a malformed {kinds[name]} was accepted")
            problems += [f"{where}: {p}" for p in fuzz.check_round_trip(hits, value)]
            if case == "long" and hits:
                problems.append(f"{where}: 20,000 characters stored (no length limit)")
            if case == "markup" and hits:
                for html in _shown_pages(client, response, url):
                    problems += [
                        f"{where}: {p}" for p in fuzz.check_escaped(html, mark)
                    ]
                    csp = crawl.parse_page(html).csp_problems
                    problems += [f"{where}: {p}" for p in csp]
            # A success may have changed the page (a new version, a new state)
            # or ended the session (sign-out): sign in again and reload it.
            refreshed = forms.current_form(app, client, auth, ids, endpoint)
            if refreshed is None:
                break
            url, role, form = refreshed
        else:
            continue
        break  # the form is gone (deleted, decided…): what was tried stands
    tally(tried)
    assert problems == []
    assert tried >= 1


def test_every_post_endpoint_has_a_form_or_a_json_test(app) -> None:
    """A new POST route is fuzzed automatically (or needs a JSON test here)."""
    posts = {r.endpoint for r in crawl.routes(app) if "POST" in r.methods}
    assert posts - set(POST_ENDPOINTS) == forms.JSON_ENDPOINTS
    assert len(POST_ENDPOINTS) > 70


# ------------------------------------------------------------ amounts (SPEC §5)


@pytest.mark.parametrize(("text", "ok"), list(fuzz.AMOUNT_FORMS.items()))
def test_each_amount_form_on_the_contact_billing_form(
    app, client, auth, lite, text: str, ok: bool
) -> None:
    """Accepted forms save the exact Decimal; the others a message beside the field."""
    ids = lite
    auth.login_contact(ids.contact_id)
    sov = ids.line_ids[2]  # 20,000.00 scheduled, nothing billed yet
    with app.app_context():
        billing = db.session.get(Billing, ids.draft_id)
        version, events = billing.version, _count(AuditEvent)
    value = text if not ok or Decimal(_plain(text)) <= 5000 else "1234.5"
    response = client.post(
        f"/portal/billings/{ids.draft_id}",
        data={
            "version": str(version),
            "action": "save",
            f"line-{sov}-work": value,
            f"line-{sov}-materials": "0",
        },
    )
    with app.app_context():
        billing = db.session.get(Billing, ids.draft_id)
        line = _line(billing, sov)
        if ok:
            assert response.status_code == 302
            assert line.claimed_work == Decimal(_plain(value)).quantize(Decimal("0.01"))
            assert billing.version == version + 1
        else:
            assert response.status_code == 422
            page = response.get_data(as_text=True)
            assert f'id="line-{sov}-work-error"' in page or "is-invalid" in page
            assert line.claimed_work == Decimal("0.00")
            assert billing.version == version
            assert _count(AuditEvent) == events


def test_negative_materials_and_negative_work_below_zero_are_refused(
    app, client, auth, lite
) -> None:
    ids = lite
    auth.login_contact(ids.contact_id)
    sov = ids.line_ids[2]
    with app.app_context():
        version = db.session.get(Billing, ids.draft_id).version
    for field, message in (
        ("materials", "cannot be negative"),
        ("work", "Work to date cannot go below zero"),
    ):
        data = {"version": str(version), "action": "save"}
        data[f"line-{sov}-{field}"] = fuzz.SPEC_REJECTS_NEGATIVE
        response = client.post(f"/portal/billings/{ids.draft_id}", data=data)
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
    with app.app_context():
        billing = db.session.get(Billing, ids.draft_id)
        assert billing.version == version
        assert _line(billing, sov).claimed_materials == Decimal("0.00")


@pytest.mark.parametrize(("text", "ok"), list(fuzz.AMOUNT_FORMS.items()))
def test_each_amount_form_on_the_review_form(
    app, client, auth, lite, text: str, ok: bool
) -> None:
    """The reviewer's approved amounts go through the same strict parser."""
    ids = lite
    auth.login_user(ids.admin_id)
    with app.app_context():
        billing = db.session.get(Billing, ids.review_id)
        line_id, version = billing.lines[0].id, billing.version
    value = text if not ok or Decimal(_plain(text)) <= 5000 else "4,999.99"
    response = client.post(
        f"/admin/billings/{ids.review_id}/decide",
        data={
            "version": str(version),
            "decision": "save",
            f"line-{line_id}-work": value,
            f"line-{line_id}-materials": "0",
            f"line-{line_id}-status": "approved",
            f"line-{line_id}-comment": "measured",
        },
    )
    with app.app_context():
        billing = db.session.get(Billing, ids.review_id)
        line = next(bl for bl in billing.lines if bl.id == line_id)
        if ok:
            assert response.status_code == 302
            assert line.approved_work == Decimal(_plain(value)).quantize(
                Decimal("0.01")
            )
        else:
            assert response.status_code == 400
            assert line.approved_work == Decimal("5000.00")
            assert billing.version == version


def _plain(text: str) -> str:
    return text.replace("$", "").replace(",", "")


def _line(billing: Billing, sov_id: int) -> BillingLine:
    return next(bl for bl in billing.lines if bl.sov_line_id == sov_id)


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


# ------------------------------------------------------------ mail headers


def test_crlf_never_reaches_a_mail_header(app, client, auth, ids) -> None:
    """Names typed with CR/LF end up in subjects: the stored subject has none, and
    the message Flask-Mail builds has exactly one Subject and no Bcc."""
    from portal.extensions import mail
    from portal.mail.outbox import _send_smtp

    auth.login_user(ids.admin_id)
    evil = "Evil\r\nBcc: victim@evil.example\r\nX-Injected: 1"
    with app.app_context():
        project = db.session.get(Project, ids.project_id)
        vendor = db.session.get(Vendor, ids.vendor_id)
        project.name, vendor.name = evil, f"<script>x()</script>{evil}"
        billing = db.session.get(Billing, ids.draft_id)
        contact = billing.created_by_contact
        last = db.session.scalar(sa.select(sa.func.max(OutboxMessage.id)))
        billings.submit_billing(billing, contact, billing.version)
        db.session.commit()
        messages = db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.id > last)
        ).all()
        assert messages
        for message in messages:
            assert not re.search(
                r"[\r\n\x00-\x1f]", message.subject + message.recipient
            )
            assert "<script>x()" not in message.body_html
            assert "&lt;script&gt;x()" in message.body_html
            with mail.record_messages() as outbox:
                app.config["MAIL_SUPPRESS_SEND"] = True
                _send_smtp(message)
            parsed = email.message_from_string(outbox[0].as_string())
            assert len(parsed.get_all("Subject")) == 1
            assert parsed["Bcc"] is None and parsed["X-Injected"] is None
            assert parsed.get_all("To") == [message.recipient]
        db.session.rollback()


@pytest.mark.parametrize(
    "email",
    [
        "victim@example.com\r\nBcc: all@evil.example",
        "victim@example.com\nCc: all@evil.example",
        "victim@example.com%0d%0aBcc:x@evil.example",
        "a@b.c, other@evil.example",
        "<victim@example.com>",
        "victim@example.com\x00\r\nBcc: x@evil.example",
    ],
)
def test_header_injection_through_addresses_is_refused(
    app, client, auth, ids, email: str
) -> None:
    """Addresses are validated where they are typed (contacts, users, new link)."""
    with app.app_context():
        before = fuzz.fingerprint()
        mails = _count(OutboxMessage)
    auth.login_user(ids.admin_id)
    response = client.post(
        f"/admin/vendors/{ids.vendor_id}/contacts/new",
        data={"name": "Injected", "email": email, "phone": ""},
    )
    assert response.status_code == 400
    response = client.post(
        "/admin/users/new",
        data={
            "name": "Injected",
            "email": email,
            "role": "viewer",
            "password": forms.NEW_PASSWORD,
            "active": "1",
        },
    )
    assert response.status_code == 400
    anonymous = app.test_client()
    response = anonymous.post("/portal/new-link", data={"email": email})
    assert response.status_code in (200, 422)
    with app.app_context():
        # "Send me a link" records every request alike, known address or not
        # (equal work, issue 17); the worker mails only a contact's own stored
        # address, so the row carries nothing into a mail header.
        assert fuzz.changed(before, fuzz.fingerprint(), ("n_link_requests",)) == []
        assert _count(OutboxMessage) == mails


# ------------------------------------------------------------ query strings


HOSTILE_QUERY = {
    "page": ["NaN", "-1", "99999999999999999999", "1e309"],
    "q": ["<script>alert(1)</script>{{7*7}}", "%' OR 1=1 --", "\x00\u202e", "x" * 5000],
    "status": ["<svg onload=alert(1)>", "approved' --"],
    "project_id": ["99999999999999999999", "-1", "１"],
    "period_id": ["abc", "0"],
    "vendor_id": ["1;DROP TABLE vendors"],
    "per_page": ["100000000"],
    "format": ["../../etc/passwd", "iif\r\nX: y"],
    "since": ["2025-13-45", "NaN"],
    "next": ["//evil.example", "javascript:alert(1)"],
}


@pytest.mark.parametrize("area", ["admin", "exports", "contact", "api"])
def test_hostile_query_strings_on_every_get_route(
    app, client, auth, ids, tally, area: str
) -> None:
    """Every GET route of the area with hostile query arguments: never a 500, and
    reflected values are escaped."""
    from portal.accounts import api_tokens

    headers = {}
    if area == "api":
        with app.app_context():
            user = db.session.get(User, ids.finance_id)
            _, raw = api_tokens.create_token(user, "query fuzz")
            db.session.commit()
        headers = {"Authorization": f"Bearer {raw}"}
    tried = 0
    for route in crawl.routes(app):
        if route.area != area or "GET" not in route.methods:
            continue
        if area != "api":
            crawl.sign_in(auth, ids, crawl.role_for(route.endpoint))
        url = crawl.url_for_route(app, route, ids)
        for name, values in HOSTILE_QUERY.items():
            for value in values:
                response = client.get(
                    f"{url}?{urlencode({name: value})}", headers=headers
                )
                tried += 1
                assert response.status_code < 500, (route.endpoint, name, value)
                if "html" in response.headers.get("Content-Type", ""):
                    html = response.get_data(as_text=True)
                    assert "<script>alert(1)" not in html, (route.endpoint, name)
                    assert "<svg onload" not in html, (route.endpoint, name)
                if response.is_json:
                    json.loads(response.get_data(as_text=True))
    tally(tried)
    assert tried > 20


# ------------------------------------------------------------ the JSON API


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b"null",
        b'{"format": "csv"}',
        b'{"format": "csv", "billing_ids": "1"}',
        b'{"format": "csv", "billing_ids": [1e309]}',
        b'{"format": "csv", "billing_ids": [99999999999999999999999]}',
        b'{"format": "csv", "billing_ids": [-1, 0, true, null, "2"]}',
        b'{"format": "=cmd|\' /C calc\'!A0", "billing_ids": [2]}',
        b'{"format": "csv\\r\\nX-Injected: 1", "billing_ids": [2]}',
        b'{"format": ["csv"], "billing_ids": [2]}',
        b'{"format": "csv", "billing_ids": [2], "include_vendors": "yes"}',
        b'{"format": "csv", "billing_ids": [2], "created_by_id": 1, "id": 99}',
        b'{"format": "csv", "billing_ids": [' + b",".join([b"2"] * 5000) + b"]}",
        b'{"a":' * 2000 + b"1" + b"}" * 2000,
        '{"format": "c\u0000sv", "billing_ids": [2]}'.encode(),
        b"\xff\xfe\x00garbage",
    ],
    ids=lambda b: repr(b[:40]),
)
def test_hostile_json_to_the_batch_api(app, client, ids, body: bytes) -> None:
    """Each body: a 4xx JSON answer with nothing written, or (for the one valid
    body) exactly one batch of billing 2 with only the fields the API sets."""
    from portal.accounts import api_tokens

    with app.app_context():
        user = db.session.get(User, ids.finance_id)
        _, raw = api_tokens.create_token(user, "json fuzz")
        db.session.commit()
        before = fuzz.fingerprint()
        batches = _count(ExportBatch)
    response = client.post(
        "/exports/api/v1/batches",
        data=body,
        headers={"Authorization": f"Bearer {raw}", "Content-Type": "application/json"},
    )
    assert response.status_code < 500
    assert response.is_json
    with app.app_context():
        if response.status_code < 300:
            assert _count(ExportBatch) == batches + 1
            batch = db.session.scalars(
                sa.select(ExportBatch).order_by(ExportBatch.id.desc())
            ).first()
            assert batch.created_by_id == ids.finance_id
            assert [item.billing_id for item in batch.items] == [ids.billing2_id]
        else:
            assert 400 <= response.status_code < 500
            assert fuzz.changed(before, fuzz.fingerprint(), ("n_api_tokens",)) == []


def test_the_round_trip_and_escaping_checks_can_fail() -> None:
    """What the fuzz would report: a NUL or control character kept, a value cut
    short, raw markup in a page, evaluated template syntax."""
    value = fuzz.TEXT_PAYLOADS["controls"]("ZQ0X")
    assert fuzz.check_round_trip([("t", "c", value)], value)  # \x00 kept
    long = fuzz.TEXT_PAYLOADS["long"]("ZQ0X")
    assert fuzz.check_round_trip([("t", "c", long[:40] + "ZQ0X")], long)  # cut
    clean = fuzz.normalisations(value)
    assert fuzz.check_round_trip([("t", "c", min(clean))], value) == []
    markup = fuzz.TEXT_PAYLOADS["markup"]("ZQ0X")
    assert fuzz.check_escaped(f"<p>{markup}</p>", "ZQ0X")
    assert fuzz.check_escaped("<p>49ZQ0X</p>", "ZQ0X")
    from markupsafe import escape

    assert fuzz.check_escaped(f"<p>{escape(markup)}</p>", "ZQ0X") == []
