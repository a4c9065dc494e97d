"""Two hosts (issue 16 item 7): two gunicorn "machines" sharing what must be shared.

Host A listens on 127.0.0.1, host B on 127.0.0.2 (two loopback addresses, the
same port), each its own gunicorn with its own workers and its own outbox
worker (``portal send-mail --loop``), from the project folder (gunicorn.conf.py
applies). They share, as two real machines would: one PostgreSQL database (a
copy of the generated one, ``CREATE DATABASE … TEMPLATE``, dropped afterwards),
one Redis (rate-limit counters, under a key prefix of this run), one upload
folder (standing for the NFS volume) and the SECRET_KEY. A local SMTP sink
(aiosmtpd) counts what the outbox workers deliver, by Message-ID.

Checks, each with the load spread over both hosts (requests alternate A, B):

* rate limits: the admin sign-in and the "send me a link" form, hit alternately
  through A and B, refuse the request after the limit at the same total count as
  one host would (``--limiter memory://`` shows what per-process counters do);
* sessions: a staff session and a contact magic-link session made on A work on
  B, a form's CSRF token from A is accepted by B (sign-in, comment), and a
  sign-out on B ends the copy of the session A still holds;
* the outbox: every pending message (the generated ones and ``--mails`` more)
  is delivered exactly once with both workers running; then ``--mails`` more,
  with host A's worker killed (SIGKILL) mid-run: every one still arrives, the
  one A was sending when it died retried by B after the claim's backoff (and
  sent twice, same Message-ID, if A died after the mail server had it);
  and ``--mails`` more with host B's worker stopped (SIGTERM, a deploy): it
  finishes its message and exits, nothing retried, nothing twice;
* uploads: a file attached through A downloads, byte for byte, through B (the
  contact's and the staff's download).

Then a throughput figure: a fixed number of contact billing page views (real
magic-link sessions, 16 client threads) on one host against the same number
alternating between the two hosts, with the workers' CPU per view. Usage::

    python -m benchmarks.generate --scale 0.1 --no-exports --no-claims \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/hosts_bench --reset
    python -m benchmarks.two_hosts \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/hosts_bench

``--gc-compare`` instead measures one host with the collector tuning of
gunicorn.conf.py off and on, alternated, in CPU ms per view (the workers'
user + sys time over a fixed number of views).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from . import generate as gen

ROOT = Path(__file__).resolve().parent.parent
HOST_A, HOST_B = "127.0.0.1", "127.0.0.2"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ATTACHMENT = re.compile(r'href="/portal/attachments/(\d+)"')
ALERT = re.compile(r'class="alert alert-(\w+)[^"]*"[^>]*>\s*(.*?)\s*<button', re.S)
#: The smallest file the upload accepts as a PDF (it sniffs "%PDF-").
PDF_BYTES = b"%PDF-1.4\n% two hosts\n" + os.urandom(2048) + b"\n%%EOF\n"


# ------------------------------------------------------------------ http


class Browser:
    """One person: a cookie jar shared by both hosts (same site, two machines)."""

    def __init__(self, port: int, source: str = HOST_A) -> None:
        self.port = port
        self.source = source
        self.cookies: dict[str, str] = {}

    def request(
        self,
        host: str,
        method: str,
        path: str,
        form: dict[str, Any] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one request to ``host``; no redirects."""
        headers = {"Host": f"portal.test:{self.port}", "Connection": "close"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body: bytes | None = None
        if files is not None:
            boundary = uuid.uuid4().hex
            parts = []
            for name, value in (form or {}).items():
                parts.append(
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
                    f"\r\n\r\n{value}\r\n".encode()
                )
            for name, (filename, data, ctype) in files.items():
                parts.append(
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                    f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
                    + data
                    + b"\r\n"
                )
            body = b"".join(parts) + f"--{boundary}--\r\n".encode()
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        elif form is not None:
            body = urllib.parse.urlencode(form, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        # One person speaks from one address whichever host answers (the
        # rate limits' key): any 127.x.y.z is this machine's loopback.
        conn = http.client.HTTPConnection(
            host, self.port, timeout=60, source_address=(self.source, 0)
        )
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    key, _, val = value.split(";", 1)[0].partition("=")
                    if val.strip() == "" or "expires=thu, 01 jan 1970" in value.lower():
                        self.cookies.pop(key.strip(), None)
                    else:
                        self.cookies[key.strip()] = val.strip()
            return response.status, dict(response.getheaders()), data
        finally:
            conn.close()

    def page(self, host: str, path: str) -> tuple[int, str]:
        status, _, data = self.request(host, "GET", path)
        return status, data.decode("utf-8", "replace")


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    if not match:
        raise RuntimeError("no CSRF token on the page")
    return match[1]


def flashes(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", text).strip() for _, text in ALERT.findall(html)]


# ------------------------------------------------------------------ database


def admin_engine(url: str) -> sa.Engine:
    return sa.create_engine(
        make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )


def _terminate(conn: sa.Connection, name: str) -> None:
    conn.execute(
        sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = :n AND pid <> pg_backend_pid()"
        ),
        {"n": name},
    )


def clone_database(base_url: str, name: str) -> str:
    """A copy of the generated database, made from it as a template."""
    url = make_url(base_url).set(drivername="postgresql+psycopg")
    engine = admin_engine(base_url)
    with engine.connect() as conn:
        for db_name in (url.database, name):
            _terminate(conn, db_name)
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"'))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    engine = admin_engine(url)
    name = make_url(url).database
    with engine.connect() as conn:
        _terminate(conn, name)
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    engine.dispose()


@dataclass
class Plan:
    """Who signs in, what they open, and the links they use."""

    contacts: list[tuple[int, int, str]]  # contact, billing to view, link token
    draft: tuple[int, int, str]  # a contact with an editable billing, its link
    admin_email: str


def prepare(url: str, secret: str, contacts: int) -> Plan:
    """Pick contacts and billings and issue real sign-in links (as a mail would)."""
    from portal import create_app
    from portal.accounts import tokens
    from portal.extensions import db
    from portal.models import Billing, Commitment, Contact, User

    gen.migrate(url)
    app = create_app(gen.bench_config(url, SECRET_KEY=secret))
    with app.app_context():
        fx = gen.find_fixture()

        def billings(statuses: list[str]) -> list[tuple[int, int]]:
            return [
                (b, c)
                for b, c in db.session.execute(
                    sa.select(Billing.id, Billing.created_by_contact_id)
                    .join(Commitment)
                    .where(
                        Billing.period_id == fx.open_period_id,
                        Billing.status.in_(statuses),
                        Billing.created_by_contact_id.is_not(None),
                        Commitment.number.notlike(f"{gen.BIG_PREFIX}%"),
                    )
                    .order_by(Billing.id)
                )
            ]

        drafts = billings(["draft"])
        viewed = billings(["under_review", "approved", "draft"])
        draft_billing, draft_contact = drafts[0]
        chosen: list[tuple[int, int, str]] = []
        used = {draft_contact}
        for billing_id, contact_id in viewed:
            if contact_id in used or len(chosen) >= contacts:
                continue
            used.add(contact_id)
            _, token = tokens.issue_link(db.session.get(Contact, contact_id))
            chosen.append((contact_id, billing_id, token))
        _, draft_token = tokens.issue_link(db.session.get(Contact, draft_contact))
        admin = db.session.scalar(
            sa.select(User.email).where(User.role == "admin").order_by(User.id)
        )
        db.session.commit()
        db.engine.dispose()
    return Plan(chosen, (draft_contact, draft_billing, draft_token), admin)


def queue_mails(url: str, secret: str, count: int, tag: str) -> None:
    """``count`` outbox messages, as the app writes them (no commit until all)."""
    from portal import create_app
    from portal.extensions import db
    from portal.mail.outbox import new_message_id
    from portal.models import OutboxMessage

    app = create_app(gen.bench_config(url, SECRET_KEY=secret))
    with app.app_context():
        for i in range(count):
            db.session.add(
                OutboxMessage(
                    kind="two_hosts",
                    recipient=f"{tag}-{i}@example.test",
                    subject=f"two hosts {tag} {i}",
                    body_text=f"message {i} of {count}",
                    body_html=f"<p>message {i} of {count}</p>",
                    message_id=new_message_id(),
                )
            )
        db.session.commit()
        db.engine.dispose()


def outbox_state(url: str) -> dict[str, Any]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, status, attempts, message_id FROM outbox_messages")
        ).all()
    engine.dispose()
    return {r.id: (r.status, r.attempts, r.message_id) for r in rows}


# ------------------------------------------------------------------ smtp sink


@dataclass
class Sink:
    """An SMTP server on 127.0.0.1 that counts every message by Message-ID."""

    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    received: Counter = field(default_factory=Counter)
    senders: Counter = field(default_factory=Counter)
    controller: Any = None

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        message = message_from_bytes(envelope.content)
        with self.lock:
            self.received[(message.get("Message-ID") or "").strip()] += 1
            self.senders[envelope.mail_from] += 1
        return "250 OK"

    def start(self) -> int:
        import socket

        from aiosmtpd.controller import Controller

        with socket.socket() as probe:  # a free port (the controller needs one)
            probe.bind((HOST_A, 0))
            port = probe.getsockname()[1]
        self.controller = Controller(self, hostname=HOST_A, port=port)
        self.controller.start()
        return port

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()


# ------------------------------------------------------------------ hosts


@dataclass
class Host:
    name: str
    address: str
    web: subprocess.Popen | None = None
    mailer: subprocess.Popen | None = None


def host_env(args: argparse.Namespace, url: str, secret: str, smtp_port: int) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": secret,
        "PUBLIC_BASE_URL": f"http://portal.test:{args.port}",
        "UPLOAD_FOLDER": args.uploads,
        "RATELIMIT_STORAGE_URI": args.limiter,
        "PORTAL_RATELIMIT_KEY_PREFIX": args.key_prefix,
        "MAIL_SERVER": HOST_A,
        "MAIL_PORT": str(smtp_port),
        "PORTAL_MAIL_TIMEOUT": "10",
    }


def start_web(host: Host, env: dict, port: int, workers: int) -> None:
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--bind",
        f"{host.address}:{port}",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "wsgi:app",
    ]
    host.web = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    probe = Browser(port)
    for _ in range(150):
        try:
            if probe.request(host.address, "GET", "/admin/login")[0] == 200:
                return
        except OSError:
            pass
        if host.web.poll() is not None:
            raise SystemExit(f"gunicorn on {host.name} exited")
        time.sleep(0.2)
    raise SystemExit(f"gunicorn on {host.name} did not answer")


def mailer_sender(host: Host) -> str:
    """Each host's worker sends as its own address, so the sink tells who sent."""
    return f"host-{host.name.lower()}@two-hosts.test"


def start_mailer(host: Host, env: dict) -> None:
    command = [
        str(Path(sys.executable).parent / "portal"),
        "send-mail",
        "--loop",
        "--interval",
        "0.5",
    ]
    host.mailer = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**env, "MAIL_DEFAULT_SENDER": mailer_sender(host)},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    """Stop a process we started (its own process group)."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# ------------------------------------------------------------------ checks


def check_rate_limit(
    port: int, source: str, path: str, form: dict, limit: int, hosts: list[str]
) -> tuple[int | None, list[int]]:
    """Requests until the first 429, alternating hosts; (refused at, answers)."""
    browser = Browser(port, source)
    statuses = []
    for i in range(limit + 3):
        host = hosts[i % len(hosts)]
        _, html = browser.page(host, path)
        status, _, _ = browser.request(
            host, "POST", path, {**form, "csrf_token": csrf_of(html)}
        )
        statuses.append(status)
        if status == 429:
            break
    refused_at = statuses.index(429) + 1 if 429 in statuses else None
    return refused_at, statuses


def rate_limit_checks(port: int, run: str) -> list[tuple[str, str, bool]]:
    """The sign-in (10 a minute) and "send me a link" (5 a minute) limits."""
    out = []
    cases = [
        (
            "admin sign-in",
            "/admin/login",
            10,
            lambda tag: {
                "email": f"nobody-{tag}@example.test",
                "password": "wrong password 1",
            },
        ),
        (
            "send me a link",
            "/portal/new-link",
            5,
            lambda tag: {"email": f"nobody-{tag}@example.test"},
        ),
    ]
    for label, path, limit, form in cases:
        # Each case uses its own client address, so one host and two hosts
        # start from empty counters: 127.0.0.x is any loopback address.
        results = {}
        for which, hosts in (("one host", [HOST_A]), ("two hosts", [HOST_A, HOST_B])):
            source = f"127.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}.2"
            results[which] = check_rate_limit(
                port, source, path, form(run), limit, hosts
            )
        one, two = results["one host"][0], results["two hosts"][0]
        ok = one == two == limit + 1
        out.append(
            (
                f"rate limit: {label} ({limit}/minute), alternating A/B",
                f"refused at request {two} on two hosts, {one} on one host "
                f"(expected {limit + 1})",
                ok,
            )
        )
    return out


def sign_in_contact(
    port: int, token: str, on: str, to: str, source: str = HOST_A
) -> tuple[Browser, int]:
    """Open the magic link on host ``on``, exchange it (its CSRF token) on ``to``."""
    browser = Browser(port, source)
    status, html = browser.page(on, f"/portal/link/{token}")
    if status != 200:
        raise RuntimeError(f"link page: HTTP {status}")
    status, _, _ = browser.request(
        to, "POST", f"/portal/link/{token}", {"csrf_token": csrf_of(html)}
    )
    return browser, status


def session_checks(
    port: int, plan: Plan
) -> tuple[list[tuple[str, str, bool]], Browser, int]:
    out = []
    # Staff: the sign-in form from A, posted to B; the session on both.
    staff = Browser(port)
    _, html = staff.page(HOST_A, "/admin/login")
    status, _, _ = staff.request(
        HOST_B,
        "POST",
        "/admin/login",
        {
            "csrf_token": csrf_of(html),
            "email": plan.admin_email,
            "password": gen.PASSWORD,
        },
    )
    a, _ = staff.page(HOST_A, "/admin/")
    b, home = staff.page(HOST_B, "/admin/")
    out.append(
        (
            "session: staff sign-in form from A posted to B, session used on A and B",
            f"sign-in HTTP {status}; /admin/ on A {a}, on B {b}",
            status == 302 and a == b == 200,
        )
    )
    # Sign out on B with the token of a page from A: the copy on A ends too.
    copy = Browser(port)
    copy.cookies = dict(staff.cookies)
    status, _, _ = staff.request(
        HOST_B, "POST", "/admin/logout", {"csrf_token": csrf_of(home)}
    )
    after, _ = copy.page(HOST_A, "/admin/")
    out.append(
        (
            "session: staff sign-out on B ends the cookie's copy on A",
            f"sign-out HTTP {status}; the old cookie on A: HTTP {after}",
            status == 302 and after == 302,
        )
    )
    # Contact: the link opened on A, exchanged on B; pages on both.
    contact_id, billing_id, token = plan.draft
    browser, status = sign_in_contact(port, token, HOST_A, HOST_B)
    path = f"/portal/billings/{billing_id}"
    a, page_a = browser.page(HOST_A, path)
    b, _ = browser.page(HOST_B, path)
    out.append(
        (
            "session: contact magic link opened on A, exchanged on B, used on both",
            f"exchange HTTP {status}; billing page on A {a}, on B {b}",
            status == 302 and a == b == 200,
        )
    )
    # A form on a page from A (the comment box), posted to B.
    body = f"two hosts {secrets.token_hex(4)}"
    status, headers, _ = browser.request(
        HOST_B,
        "POST",
        f"{path}/comments",
        {"csrf_token": csrf_of(page_a), "body": body, "line_id": ""},
    )
    _, shown = browser.page(HOST_A, path)
    out.append(
        (
            "session: CSRF token of A's billing page accepted by B (comment)",
            f"HTTP {status}; the comment shown on A: {body in shown}",
            status == 302 and body in shown,
        )
    )
    return out, browser, billing_id


def upload_checks(
    port: int, browser: Browser, billing_id: int, admin_email: str
) -> list[tuple[str, str, bool]]:
    path = f"/portal/billings/{billing_id}"
    _, html = browser.page(HOST_A, path)
    before = set(ATTACHMENT.findall(html))
    status, _, _ = browser.request(
        HOST_A,
        "POST",
        f"{path}/attachments",
        {"csrf_token": csrf_of(html), "kind": "invoice"},
        {"file": ("invoice-two-hosts.pdf", PDF_BYTES, "application/pdf")},
    )
    _, html = browser.page(HOST_B, path)
    new = sorted(set(ATTACHMENT.findall(html)) - before)
    if status != 302 or not new:
        return [("upload on A, download on B", f"upload HTTP {status}", False)]
    attachment = new[-1]
    want = hashlib.sha256(PDF_BYTES).hexdigest()
    got_status, _, data = browser.request(
        HOST_B, "GET", f"/portal/attachments/{attachment}"
    )
    contact_ok = got_status == 200 and hashlib.sha256(data).hexdigest() == want
    staff = Browser(port)
    _, login = staff.page(HOST_B, "/admin/login")
    staff.request(
        HOST_B,
        "POST",
        "/admin/login",
        {"csrf_token": csrf_of(login), "email": admin_email, "password": gen.PASSWORD},
    )
    staff_status, _, staff_data = staff.request(
        HOST_B, "GET", f"/admin/attachments/{attachment}"
    )
    staff_ok = staff_status == 200 and hashlib.sha256(staff_data).hexdigest() == want
    return [
        (
            "upload: attached through A, downloaded through B (contact, staff)",
            f"upload HTTP {status}; contact download on B {got_status} "
            f"({'same bytes' if contact_ok else 'DIFFERENT'}), staff download on B "
            f"{staff_status} ({'same bytes' if staff_ok else 'DIFFERENT'})",
            contact_ok and staff_ok,
        )
    ]


def by_host(sink: Sink, hosts: list[Host]) -> str:
    return ", ".join(
        f"{sink.senders[mailer_sender(h)]} by {h.name}'s worker" for h in hosts
    )


def wait_delivered(url: str, ids: set[int], seconds: float) -> dict[int, Any]:
    deadline = time.monotonic() + seconds
    while True:
        state = outbox_state(url)
        if all(state[i][0] != "pending" for i in ids) or time.monotonic() > deadline:
            return state
        time.sleep(1)


def outbox_checks(
    args: argparse.Namespace,
    url: str,
    secret: str,
    sink: Sink,
    hosts: list[Host],
    env: dict,
) -> list[tuple[str, str, bool]]:
    out = []
    # 1. Both workers running: every pending message exactly once.
    queue_mails(url, secret, args.mails, "both")
    before = outbox_state(url)
    ids = {i for i, (status, _, _) in before.items() if status == "pending"}
    started = time.monotonic()
    sink.senders.clear()
    for host in hosts:
        start_mailer(host, env)
    state = wait_delivered(url, ids, 120)
    elapsed = time.monotonic() - started
    sent = {i for i in ids if state[i][0] == "sent"}
    counts = [sink.received[state[i][2]] for i in ids]
    once = sum(1 for c in counts if c == 1)
    twice = sum(1 for c in counts if c > 1)
    missing = sum(1 for c in counts if c == 0)
    out.append(
        (
            f"outbox: {len(ids)} pending mails, the workers of A and B running",
            f"{len(sent)} marked sent in {elapsed:.1f} s ({by_host(sink, hosts)}); "
            f"at the SMTP sink {once} once, {twice} more than once, {missing} never",
            len(sent) == len(ids) and once == len(ids),
        )
    )
    # 2. Host A's worker killed mid-run: nothing lost.
    sink.delay = args.sink_delay
    queue_mails(url, secret, args.mails, "kill")
    state = outbox_state(url)
    ids = {i for i, (status, _, _) in state.items() if status == "pending"}
    ids_ids = {state[i][2] for i in ids}
    sink.senders.clear()
    started = time.monotonic()
    while time.monotonic() - started < 120:
        got = sum(1 for m in ids_ids if sink.received[m])
        if got >= len(ids) // 3:
            break
        time.sleep(0.05)
    stop(hosts[0].mailer, signal.SIGKILL)
    killed_at = sum(1 for m in ids_ids if sink.received[m])
    # A message A had claimed is retried after the claim's backoff (1 minute).
    state = wait_delivered(url, ids, 200)
    elapsed = time.monotonic() - started
    sink.delay = 0.0
    sent = {i for i in ids if state[i][0] == "sent"}
    counts = [sink.received[state[i][2]] for i in ids]
    once = sum(1 for c in counts if c == 1)
    twice = sum(1 for c in counts if c > 1)
    missing = sum(1 for c in counts if c == 0)
    retried = sum(1 for i in ids if state[i][1] > 1)
    out.append(
        (
            f"outbox: {len(ids)} more, A's worker killed (SIGKILL) after "
            f"{killed_at} had arrived",
            f"{len(sent)} marked sent in {elapsed:.1f} s ({by_host(sink, hosts)}; "
            f"{retried} on a second attempt); at the sink {once} once, {twice} more than once "
            f"(same Message-ID), {missing} never",
            # Nothing lost; at most the one message A had handed to the SMTP
            # server when it died goes out again (at least once, same
            # Message-ID, so the receiver can drop the repeat).
            len(sent) == len(ids) and missing == 0 and twice <= 1,
        )
    )
    start_mailer(hosts[0], env)  # the host's supervisor would restart it
    # 3. Host B's worker stopped (SIGTERM, a deploy) mid-run: it finishes the
    # message it is sending, claims no more, and A sends the rest at once.
    sink.delay = args.sink_delay
    queue_mails(url, secret, args.mails, "term")
    state = outbox_state(url)
    ids = {i for i, (status, _, _) in state.items() if status == "pending"}
    ids_ids = {state[i][2] for i in ids}
    sink.senders.clear()
    started = time.monotonic()
    while time.monotonic() - started < 120:
        if sum(1 for m in ids_ids if sink.received[m]) >= len(ids) // 3:
            break
        time.sleep(0.05)
    stop(hosts[1].mailer, signal.SIGTERM)
    code = hosts[1].mailer.returncode
    stopped_at = sum(1 for m in ids_ids if sink.received[m])
    state = wait_delivered(url, ids, 200)
    elapsed = time.monotonic() - started
    sink.delay = 0.0
    sent = {i for i in ids if state[i][0] == "sent"}
    counts = [sink.received[state[i][2]] for i in ids]
    once = sum(1 for c in counts if c == 1)
    retried = sum(1 for i in ids if state[i][1] > 1)
    out.append(
        (
            f"outbox: {len(ids)} more, B's worker stopped (SIGTERM) after "
            f"{stopped_at} had arrived",
            f"B exited with status {code}; {len(sent)} marked sent in "
            f"{elapsed:.1f} s ({by_host(sink, hosts)}; {retried} retried); at "
            f"the sink {once} once, {len(ids) - once} not exactly once",
            code == 0 and len(sent) == len(ids) and once == len(ids) and not retried,
        )
    )
    start_mailer(hosts[1], env)
    return out


# ------------------------------------------------------------------ throughput


def views(
    addresses: list[str],
    port: int,
    sessions: list[tuple[Browser, int]],
    count: int,
    threads: int,
) -> tuple[int, int, float]:
    """``count`` contact page views, request i to ``addresses[i % n]`` (so split
    evenly, alternating), from ``threads`` client threads; (answered, not 200,
    seconds). Each view carries a signed-in contact's session cookie; anything
    but a 200 (an expired session would be a 302) counts as an error."""
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "bad": 0}

    def work() -> None:
        while True:
            with lock:
                i = state["next"]
                if i >= count:
                    return
                state["next"] = i + 1
            browser, billing_id = sessions[i % len(sessions)]
            try:
                status, _, _ = browser.request(
                    addresses[i % len(addresses)],
                    "GET",
                    f"/portal/billings/{billing_id}",
                )
            except OSError:
                status = 0
            with lock:
                state["ok" if status == 200 else "bad"] += 1

    pool = [threading.Thread(target=work) for _ in range(threads)]
    started = time.monotonic()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return state["ok"] + state["bad"], state["bad"], time.monotonic() - started


def cpu_seconds(process: subprocess.Popen) -> float:
    """User + sys CPU of a gunicorn master's workers (the live ones)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text()
    except OSError:
        return 0.0
    for pid in children.split():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def throughput(
    args: argparse.Namespace, env: dict, plan: Plan, hosts: list[Host], layouts
) -> list[str]:
    """Views/s and worker CPU per view for each (label, host count, workers)."""
    rows = []
    for label, count, workers, extra in layouts:
        used = hosts[:count]
        for host in used:
            start_web(host, {**env, **extra}, args.port, workers)
        try:
            sessions = []
            for i, (_, billing_id, token) in enumerate(plan.contacts):
                on = used[i % len(used)].address
                # each contact signs in from their own address (the link
                # limits are per address; the views come from 127.0.0.1)
                source = f"127.10.{i // 250}.{i % 250 + 1}"
                browser, status = sign_in_contact(args.port, token, on, on, source)
                if status != 302:
                    raise RuntimeError(f"contact sign-in: HTTP {status}")
                sessions.append((browser, billing_id))
            # warm up every worker, then measure
            views([h.address for h in used], args.port, sessions, 40 * count, 4)
            cpu0 = sum(cpu_seconds(h.web) for h in used)
            answered, bad, seconds = views(
                [h.address for h in used],
                args.port,
                sessions,
                args.views,
                args.connections,
            )
            cpu = sum(cpu_seconds(h.web) for h in used) - cpu0
            rows.append(
                f"| {label} | {answered:,} | {seconds:.1f} | {answered / seconds:,.1f} "
                f"| {cpu * 1000 / max(answered, 1):.1f} | {bad} |"
            )
            print(rows[-1], file=sys.stderr)
        finally:
            for host in used:
                stop(host.web)
            # fresh links for the next layout (a link exchanged is spent)
            plan.contacts = reissue(args.url, args.secret, plan.contacts)
    return rows


def reissue(url: str, secret: str, contacts: list[tuple[int, int, str]]):
    from portal import create_app
    from portal.accounts import tokens
    from portal.extensions import db
    from portal.models import Contact

    app = create_app(gen.bench_config(url, SECRET_KEY=secret))
    with app.app_context():
        out = []
        for contact_id, billing_id, _ in contacts:
            _, token = tokens.issue_link(db.session.get(Contact, contact_id))
            out.append((contact_id, billing_id, token))
        db.session.commit()
        db.engine.dispose()
    return out


THROUGHPUT_HEADER = [
    "| layout | views | seconds | views/s | worker CPU ms/view | not 200 |",
    "|---|---:|---:|---:|---:|---:|",
]


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="the generated database")
    parser.add_argument("--copy-name", default="hosts_bench_run")
    parser.add_argument("--port", type=int, default=8870)
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn workers a host"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--limiter", help="rate-limit storage (default: --redis); memory:// to compare"
    )
    parser.add_argument("--mails", type=int, default=200, help="mails per outbox phase")
    parser.add_argument(
        "--sink-delay",
        type=float,
        default=0.02,
        help="SMTP seconds a mail (kill phase)",
    )
    parser.add_argument("--contacts", type=int, default=40)
    parser.add_argument("--views", type=int, default=1500)
    parser.add_argument("--connections", type=int, default=16, help="client threads")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument(
        "--gc-compare",
        action="store_true",
        help="only: one host, collector tuning off/on alternated, CPU ms per view",
    )
    parser.add_argument("--rounds", type=int, default=2, help="--gc-compare rounds")
    parser.add_argument(
        "--gc-variants",
        default="off;50000,50,100",
        help="--gc-compare: ';'-separated, 'off' or thresholds (start-up frozen)",
    )
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgres"):
        raise SystemExit("Two hosts share a PostgreSQL database.")
    args.limiter = args.limiter or args.redis
    args.key_prefix = f"two-hosts-{secrets.token_hex(4)}"
    args.secret = secrets.token_urlsafe(32)
    args.uploads = tempfile.mkdtemp(prefix="pb-two-hosts-uploads-")
    url = args.url = clone_database(args.database_url, args.copy_name)
    print(
        f"Copied the database to {args.copy_name}; uploads in {args.uploads}.",
        file=sys.stderr,
    )
    sink = Sink()
    hosts = [Host("A", HOST_A), Host("B", HOST_B)]
    try:
        plan = prepare(url, args.secret, args.contacts)
        smtp_port = sink.start()
        env = host_env(args, url, args.secret, smtp_port)
        if args.gc_compare:
            layouts = []
            for r in range(args.rounds):
                for variant in args.gc_variants.split(";"):
                    variant = variant.strip()
                    if variant == "off":
                        label, extra = (
                            "collector as CPython sets it",
                            {"PORTAL_GC_TUNING": "off"},
                        )
                    else:
                        label = f"frozen, thresholds {variant}"
                        extra = {"PORTAL_GC_THRESHOLDS": variant}
                    layouts.append(
                        (f"one host, {label} (round {r + 1})", 1, args.workers, extra)
                    )
            rows = throughput(args, env, plan, hosts, layouts)
            print("\n".join(THROUGHPUT_HEADER + rows))
            return
        for host in hosts:
            start_web(host, env, args.port, args.workers)
        results: list[tuple[str, str, bool]] = []
        try:
            results += rate_limit_checks(args.port, args.key_prefix)
            checks, browser, billing_id = session_checks(args.port, plan)
            results += checks
            results += upload_checks(args.port, browser, billing_id, plan.admin_email)
            results += outbox_checks(args, url, args.secret, sink, hosts, env)
        finally:
            for host in hosts:
                stop(host.mailer)
                stop(host.web)
        lines = [
            f"Two hosts: A {HOST_A}:{args.port}, B {HOST_B}:{args.port}, "
            f"{args.workers} gunicorn workers and one outbox worker each; rate limits "
            f"in {args.limiter.split('://')[0]}://.",
            "",
            "| check | result | verdict |",
            "|---|---|---|",
        ]
        lines += [f"| {c} | {r} | {'ok' if ok else 'FAILED'} |" for c, r, ok in results]
        print("\n".join(lines), flush=True)
        if not args.no_throughput:
            w = args.workers
            rows = throughput(
                args,
                env,
                plan,
                hosts,
                [
                    (f"one host, {w} workers", 1, w, {}),
                    (f"two hosts, {w} workers each", 2, w, {}),
                    (
                        f"two hosts, {max(1, w // 2)} worker(s) each",
                        2,
                        max(1, w // 2),
                        {},
                    ),
                ],
            )
            print(
                f"\nContact billing page views ({args.views:,} a layout, "
                f"{args.connections} client threads, requests alternating between "
                "the hosts):\n\n" + "\n".join(THROUGHPUT_HEADER + rows)
            )
        if not all(ok for _, _, ok in results):
            raise SystemExit(1)
    finally:
        for host in hosts:
            stop(host.mailer)
            stop(host.web)
        sink.stop()
        drop_database(url)
        shutil.rmtree(args.uploads, ignore_errors=True)


if __name__ == "__main__":
    main()
