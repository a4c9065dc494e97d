"""Attacks on magic links (SPEC §6). Every case checks the HTTP answer and then
the database: the link row, the contact's sessions, audit events and mail."""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from portal.accounts import tokens
from portal.billing.drafts import expand_link_requests
from portal.extensions import db
from portal.models import AuditEvent, Contact, LoginLink, OutboxMessage
from portal.timeutil import utcnow

from ..conftest import Auth, make_test_app
from . import fuzz

#: Dates matter here: .ci/run also runs these at pinned days (tests/clock.py).
pytestmark = pytest.mark.calendar

CASEY = "casey@example-electric.example"


def _link_of(token: str) -> LoginLink:
    payload = token.split(".")[0]
    link_id = int(
        re.search(rb'"l":(\d+)', base64.urlsafe_b64decode(payload + "=" * 4))[1]
    )
    return db.session.get(LoginLink, link_id)


def _state(app) -> dict:
    """What an attack must not change: used links, sign-ins, mails, versions."""
    with app.app_context():
        out = {
            "used": db.session.scalar(
                sa.select(sa.func.count(LoginLink.id)).where(
                    LoginLink.used_at.is_not(None)
                )
            ),
            "links": db.session.scalar(sa.select(sa.func.count(LoginLink.id))),
            "sign_ins": db.session.scalar(
                sa.select(sa.func.count(AuditEvent.id)).where(
                    AuditEvent.action == "contact.sign_in"
                )
            ),
            "mails": db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))),
            "token_versions": db.session.scalar(
                sa.select(sa.func.sum(Contact.token_version))
            ),
        }
        db.session.remove()
    return out


def _signed_out(client) -> bool:
    return client.get("/portal/").status_code == 401


def _refused(client, token: str) -> None:
    """GET, HEAD and POST of the token are all a 410 with private headers."""
    for method in ("GET", "HEAD", "POST"):
        response = client.open(f"/portal/link/{token}", method=method)
        assert response.status_code == 410, (method, token[:40])
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "no-store" in response.headers["Cache-Control"]
    assert _signed_out(client)


def _tampered(token: str, how: str) -> str:
    payload, stamp, signature = token.split(".")
    flip = {"A": "B"}.get
    if how == "payload":
        return f"{payload[:-1]}{flip(payload[-1], 'A')}.{stamp}.{signature}"
    if how == "timestamp":
        return f"{payload}.{stamp[:-1]}{flip(stamp[-1], 'A')}.{signature}"
    if how == "signature":
        return f"{payload}.{stamp}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    if how == "truncated":
        return token[:-5]
    if how == "appended":
        return token + "x"
    if how == "no-signature":
        return f"{payload}.{stamp}"
    if how == "other-link-id":  # Olive's link id under Casey's signature
        other = base64.urlsafe_b64encode(b'{"l":2}').rstrip(b"=").decode()
        return f"{other}.{stamp}.{signature}"
    if how == "swapped-case":
        return token.swapcase()
    if how == "over-long":
        return token + "A" * 500
    if how == "unicode":
        return token[:-1] + "é"
    raise AssertionError(how)


TAMPERS = [
    "payload",
    "timestamp",
    "signature",
    "truncated",
    "appended",
    "no-signature",
    "other-link-id",
    "swapped-case",
    "over-long",
    "unicode",
]


@pytest.mark.parametrize("how", TAMPERS)
def test_tampered_token(app, client, w, issue, how: str) -> None:
    token = issue(w.contact_id)
    issue(w.other_contact_id)
    before = _state(app)
    _refused(client, _tampered(token, how))
    # Asking for a fresh link with a forged token sends nothing.
    response = client.post(
        f"/portal/link/{_tampered(token, how)}", data={"action": "fresh"}
    )
    assert response.status_code == 410
    assert _state(app) == before
    # The genuine link still works afterwards.
    assert client.post(f"/portal/link/{token}").status_code == 302


@pytest.mark.parametrize("how", ["row-expired", "signature-too-old"])
def test_expired_link(app, client, w, issue, how: str) -> None:
    token = issue(w.contact_id)
    with app.app_context():
        link = _link_of(token)
        if how == "row-expired":
            link.expires_at = utcnow() - timedelta(seconds=1)
        else:

            class OldSigner(TimestampSigner):
                def get_timestamp(self) -> int:
                    return int(time.time()) - 15 * 86400

            token = URLSafeTimedSerializer(
                app.config["SECRET_KEY"], salt=tokens.LINK_SALT, signer=OldSigner
            ).dumps({"l": link.id})
        db.session.commit()
        db.session.remove()
    before = _state(app)
    _refused(client, token)
    assert "This link has expired" in client.get(f"/portal/link/{token}").text
    assert _state(app) == before


def test_used_link(app, client, w, issue) -> None:
    token = issue(w.contact_id)
    assert app.test_client().post(f"/portal/link/{token}").status_code == 302
    with app.app_context():
        used_at = _link_of(token).used_at
        db.session.remove()
    before = _state(app)
    _refused(client, token)
    assert "already used" in client.get(f"/portal/link/{token}").text
    after = _state(app)
    assert after == before
    with app.app_context():
        assert _link_of(token).used_at == used_at  # not re-stamped


def test_revoked_link_and_session(app, client, w, issue) -> None:
    used, unused = issue(w.contact_id), issue(w.contact_id)
    assert client.post(f"/portal/link/{used}").status_code == 302
    assert not _signed_out(client)
    with app.app_context():
        tokens.revoke_contact_links(db.session.get(Contact, w.contact_id))
        db.session.commit()
        db.session.remove()
    assert _signed_out(client)  # the live session ended too
    before = _state(app)
    other = app.test_client()
    _refused(other, unused)
    assert "no longer valid" in other.get(f"/portal/link/{unused}").text
    assert _state(app) == before
    with app.app_context():
        assert _link_of(unused).used_at is None


@pytest.mark.parametrize(
    "source", ["other-salt", "csrf-serializer", "session-cookie", "other-secret-key"]
)
def test_token_of_another_purpose(app, client, w, issue, source: str) -> None:
    """Tokens signed for something else (or by someone else) never sign anyone in."""
    issue(w.contact_id)
    with app.app_context():
        link = db.session.scalars(sa.select(LoginLink)).first()
        if source == "other-salt":
            token = tokens.serializer(salt="password-reset").dumps({"l": link.id})
        elif source == "csrf-serializer":
            token = URLSafeTimedSerializer(
                app.config["SECRET_KEY"], salt="wtf-csrf-token"
            ).dumps({"l": link.id})
        elif source == "other-secret-key":
            token = URLSafeTimedSerializer(
                "someone-elses-key", salt=tokens.LINK_SALT
            ).dumps({"l": link.id})
        db.session.remove()
    if source == "session-cookie":
        staff = app.test_client()
        with staff.session_transaction() as sess:
            sess["l"] = 1
        token = staff.get_cookie("session").value
    before = _state(app)
    _refused(client, token)
    assert _state(app) == before


def test_cross_contact_link_gives_only_that_contacts_access(
    app, client, w, issue, make_billing
) -> None:
    """Olive's link, opened in Casey's browser, makes it Olive's session: Casey's
    billing is then a 404, and Casey's own links are untouched."""
    casey_billing = make_billing(w)
    casey_token = issue(w.contact_id)
    assert client.post(f"/portal/link/{casey_token}").status_code == 302
    assert client.get(f"/portal/billings/{casey_billing}").status_code == 200
    olive_token = issue(w.other_contact_id)
    assert client.post(f"/portal/link/{olive_token}").status_code == 302
    assert client.get(f"/portal/billings/{casey_billing}").status_code == 404
    assert "Olive Other" in client.get("/portal/").text
    with app.app_context():
        events = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "contact.sign_in")
        ).all()
        assert sorted(e.actor_contact_id for e in events) == sorted(
            [w.contact_id, w.other_contact_id]
        )


def test_session_is_renewed_on_exchange(app, client, w, issue) -> None:
    """No session fixation: whatever the browser carried before is dropped."""
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
        sess["_user_id"] = f"c:{w.other_contact_id}:0"
    assert client.post(f"/portal/link/{issue(w.contact_id)}").status_code == 302
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess["_user_id"].startswith(f"c:{w.contact_id}:")


def test_prefetch_by_get_and_head_changes_nothing(app, w, issue) -> None:
    """Mail scanners fetch links (GET and HEAD, many times, other agents) first."""
    token = issue(w.contact_id)
    before = _state(app)
    scanner = app.test_client()
    for agent in ("Microsoft Office/16.0", "Mimecast", "curl/8", "Slackbot"):
        for method in ("GET", "HEAD", "GET"):
            response = scanner.open(
                f"/portal/link/{token}", method=method, headers={"User-Agent": agent}
            )
            assert response.status_code == 200
            assert "no-store" in response.headers["Cache-Control"]
    assert _signed_out(scanner)
    assert _state(app) == before
    with app.app_context():
        assert _link_of(token).used_at is None
    person = app.test_client()
    assert person.post(f"/portal/link/{token}").status_code == 302
    assert not _signed_out(person)
    assert _state(app)["sign_ins"] == before["sign_ins"] + 1


def test_concurrent_exchanges_with_threads(app, w, issue) -> None:
    """Eight clicks at once on one link (real threads): exactly one session."""
    token = issue(w.contact_id)
    n = 8
    barrier = threading.Barrier(n)
    clients = [app.test_client() for _ in range(n)]
    codes: list[int] = [0] * n

    def click(i: int) -> None:
        barrier.wait()
        codes[i] = clients[i].post(f"/portal/link/{token}").status_code

    threads = [threading.Thread(target=click, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(codes) == [302] + [410] * (n - 1)
    signed_in = [c for c in clients if not _signed_out(c)]
    assert len(signed_in) == 1
    state = _state(app)
    assert (state["used"], state["sign_ins"]) == (1, 1)


def _random_token() -> str:
    """Something shaped like a real token (three base64url parts)."""

    def part(n: int) -> str:
        return base64.urlsafe_b64encode(secrets.token_bytes(n)).rstrip(b"=").decode()

    return f"{part(9)}.{part(4)}.{part(20)}"


def test_random_tokens_never_resolve(app, client, w, issue) -> None:
    issue(w.contact_id)
    before = _state(app)
    for _ in range(200):
        assert client.post(f"/portal/link/{_random_token()}").status_code == 410
    assert _signed_out(client)
    assert _state(app) == before


def test_brute_force_is_throttled(database_url, tmp_path, w, issue) -> None:
    """With rate limits on (as in production): 10 guesses a minute, then 429."""
    token = issue(w.contact_id)
    throttled = make_test_app(database_url, tmp_path, RATELIMIT_ENABLED=True)
    client = throttled.test_client()
    codes = [
        client.post(f"/portal/link/{_random_token()}").status_code for _ in range(12)
    ]
    assert codes == [410] * 10 + [429, 429]
    # Even the genuine link is refused from this address for now...
    response = client.post(f"/portal/link/{token}")
    assert response.status_code == 429
    assert "Too many requests" in response.text
    views = [
        client.get(f"/portal/link/{_random_token()}").status_code for _ in range(31)
    ]
    assert views[:30] == [410] * 30 and views[30] == 429
    # ...and nothing was used, signed in or mailed.
    before = _state(throttled)
    assert (before["used"], before["sign_ins"], before["mails"]) == (0, 0, 0)
    # Another address is not affected.
    other = throttled.test_client()
    response = other.post(
        f"/portal/link/{token}", environ_base={"REMOTE_ADDR": "10.0.0.7"}
    )
    assert response.status_code == 302
    with throttled.app_context():
        db.engine.dispose()


def _comparable(response, email: str) -> tuple:
    headers = {
        k: v
        for k, v in response.headers.items()
        if k not in ("Date", "Content-Length", "Set-Cookie")
    }
    return (
        response.status_code,
        response.get_data(as_text=True).replace(email, "EMAIL"),
        sorted(headers.items()),
        "Set-Cookie" in response.headers,
    )


@pytest.mark.parametrize(
    "email",
    [
        CASEY,
        CASEY.upper(),
        f"  {CASEY}  ",
        "nobody@example-electric.example",
        "gone@example-electric.example",
        "second@ee.example",
    ],
)
def test_send_me_a_link_answers_identically(app, client, w, email: str) -> None:
    """Known, unknown, inactive and differently-cased addresses: the same page,
    the same headers, the same cookies. Only active known contacts get mail."""
    with app.app_context():
        from .. import factories as f

        gone = f.make_contact(
            db.session.get(Contact, w.contact_id).vendor,
            name="Gone",
            email="gone@example-electric.example",
            active=False,
        )
        db.session.commit()
        assert not gone.active
        db.session.remove()
    reference = app.test_client().post(
        "/portal/new-link", data={"email": "unknown@nowhere.example"}
    )
    response = client.post("/portal/new-link", data={"email": email})
    assert _comparable(response, email.strip()) == _comparable(
        reference, "unknown@nowhere.example"
    )
    with app.app_context():
        expand_link_requests()  # the mail worker's first step
        mails = db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.kind == "new_link")
        ).all()
        expected = 1 if email.strip().lower() == CASEY else 0
        assert len(mails) == expected
        if expected:
            assert mails[0].recipient == CASEY  # the address on file
        assert db.session.scalar(sa.select(sa.func.count(LoginLink.id))) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"},
        {"Host": "evil.example:8080", "Forwarded": "host=evil.example"},
    ],
    ids=["host", "x-forwarded-host", "forwarded"],
)
def test_forged_host_never_reaches_a_mailed_link(
    app, client, w, issue, headers: dict
) -> None:
    """Links in mails come from PUBLIC_BASE_URL: the new-link form, a fresh link
    from an expired one, and an invitation sent from the back office."""
    client.post("/portal/new-link", data={"email": CASEY}, headers=headers)
    token = issue(w.contact_id)
    with app.app_context():
        _link_of(token).expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        db.session.remove()
    response = client.post(
        f"/portal/link/{token}", data={"action": "fresh"}, headers=headers
    )
    assert response.status_code == 200
    admin = app.test_client()
    Auth(app, admin).login_user(w.admin_id)
    # (The test client keeps cookies per host: the admin's own request is sent
    # to our host with the forwarding headers a confused proxy might add.)
    response = admin.post(
        f"/admin/periods/{w.period1_id}/bulk",
        data={"action": "invite", "commitment_ids": str(w.commitment_id)},
        headers={k: v for k, v in headers.items() if k != "Host"},
    )
    assert response.status_code == 302
    with app.app_context():
        expand_link_requests()  # the mail worker's first step
        mails = db.session.scalars(sa.select(OutboxMessage)).all()
        assert sorted(m.kind for m in mails) == ["invite", "new_link", "new_link"]
        for mail in mails:
            links = re.findall(r"https?://[^\s\"'<>]+", mail.body_text + mail.body_html)
            assert links, mail.kind
            assert all(link.startswith("http://portal.test/") for link in links)
            assert "evil" not in mail.body_text + mail.body_html


def test_tokens_are_never_stored(app, client, w, issue) -> None:
    """The database holds link rows, never the signed token (nor its signature)."""
    token = issue(w.contact_id)
    client.get(f"/portal/link/{token}")
    client.post(f"/portal/link/{token}")
    client.post(f"/portal/link/{token}", data={"action": "fresh"})
    with app.app_context():
        for part in token.split("."):
            if len(part) >= 8:
                hits = [
                    h
                    for h in fuzz.stored_with(part)
                    if not (h[0] == "outbox_messages" and h[1].startswith("body"))
                ]
                assert hits == [], part
