"""Load test: the app under gunicorn on PostgreSQL, driven over HTTP (SPEC §11).

It copies the generated database (``CREATE DATABASE … TEMPLATE``) so the
original stays untouched, starts gunicorn on 127.0.0.1 with several workers,
signs contacts in with real magic links and admins with their passwords, then
runs two bounded phases (a fixed time *and* a request cap; traffic goes to
127.0.0.1 only):

* ``views``: contacts opening their billing page, as fast as the server allows
  (the "contact page views per second" figure), driven by Debian's ``wrk`` with
  the contacts' session cookies when it is installed (``--views-tool python``
  for the script's own client);
* ``mix``: a realistic mix of contact page views, draft saves, submissions and
  admin reviews (review page, then approve).

Each action follows its redirect like a browser and checks the flash message,
so a success is a success the user saw. Afterwards the database is checked:
every save that was answered with "Draft saved" holds exactly the amounts sent,
every answered submission is under review with its revision snapshot, audit
event and mails, and every answered approval is approved with frozen figures.
Usage::

    python -m benchmarks.load \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_pb

Rate limits stay on, with the link and login limits raised for the run: every
simulated contact comes from the one address of the load driver.
"""

from __future__ import annotations

import argparse
import http.client
import os
import queue
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from portal import create_app
from portal.extensions import db

from . import generate as gen

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
VERSION = re.compile(r'name="version" value="(\d+)"')
LINE_INPUT = re.compile(r'name="(line-(\d+)-(work|materials))"[^>]*value="([^"]*)"')
ALERT = re.compile(r'class="alert alert-(\w+)[^"]*"[^>]*>\s*(.*?)\s*<button', re.S)


# ------------------------------------------------------------------ http


class Browser:
    """One signed-in person: a cookie jar and plain http.client requests."""

    def __init__(self, port: int, who: str) -> None:
        self.port = port
        self.who = who
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def request(
        self, method: str, path: str, form: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, str], str, float]:
        """(status, headers, body, seconds) of one request; no redirects."""
        body = None
        headers = {"Host": f"{HOST}:{self.port}", "Connection": "close"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if form is not None:
            body = urllib.parse.urlencode(form, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
        started = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            elapsed = time.perf_counter() - started
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    cookie = value.split(";", 1)[0]
                    key, _, val = cookie.partition("=")
                    self.cookies[key.strip()] = val.strip()
            return response.status, dict(response.getheaders()), text, elapsed
        finally:
            conn.close()


@dataclass
class Stats:
    """Latencies and outcomes per kind of request, shared by the threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    requests: int = 0

    def record(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.times[kind].append(seconds)
            self.requests += 1

    def error(self, kind: str, message: str) -> None:
        with self.lock:
            self.errors[kind].append(message)


def flashes(html: str) -> list[tuple[str, str]]:
    """(category, text) of the page's flash messages."""
    return [
        (cat, re.sub(r"<[^>]+>", "", text).strip()) for cat, text in ALERT.findall(html)
    ]


# ------------------------------------------------------------------ plan


@dataclass
class ContactSession:
    browser: Browser
    contact_id: int
    billing_id: int  # the page they view
    draft_id: int | None  # a draft they may save and submit
    submitted: bool = False


@dataclass
class AdminSession:
    browser: Browser
    user_id: int


@dataclass
class Ledger:
    """What the server confirmed, to check against the database afterwards."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    saved: dict[int, dict[int, tuple[str, str]]] = field(default_factory=dict)
    submitted: set[int] = field(default_factory=set)
    approved: dict[int, int] = field(default_factory=dict)  # billing → admin


def clone_database(base_url: str, name: str) -> str:
    """A copy of the generated database, made from it as a template."""
    url = make_url(base_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for db_name in (url.database, name):
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": db_name},
            )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    parsed = make_url(url)
    admin = sa.create_engine(
        parsed.set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": parsed.database},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{parsed.database}"'))
    admin.dispose()


def prepare(url: str, secret: str, contacts: int) -> dict[str, Any]:
    """Pick the contacts and billings, and issue their sign-in links."""
    from portal.accounts import tokens
    from portal.models import Billing, Commitment, Contact, User

    gen.migrate(url)
    app = create_app(gen.bench_config(url, SECRET_KEY=secret))
    with app.app_context():
        fx = gen.find_fixture()
        drafts = db.session.execute(
            sa.select(Billing.id, Billing.created_by_contact_id)
            .join(Commitment)
            .where(
                Billing.period_id == fx.open_period_id,
                Billing.status == "draft",
                Commitment.number.like("SC-%"),
                Commitment.number.notlike(f"{gen.BIG_PREFIX}%"),
            )
            .order_by(Billing.id)
        ).all()
        others = db.session.execute(
            sa.select(Billing.id, Billing.created_by_contact_id)
            .join(Commitment)
            .where(
                Billing.period_id == fx.open_period_id,
                Billing.status.in_(["under_review", "approved"]),
                Commitment.number.notlike(f"{gen.BIG_PREFIX}%"),
            )
            .order_by(Billing.id)
        ).all()
        chosen: list[tuple[int, int, int | None]] = []
        used: set[int] = set()
        for billing_id, contact_id in drafts:
            if contact_id not in used and len(chosen) < contacts // 2:
                used.add(contact_id)
                chosen.append((contact_id, billing_id, billing_id))
        for billing_id, contact_id in others:
            if contact_id not in used and len(chosen) < contacts:
                used.add(contact_id)
                chosen.append((contact_id, billing_id, None))
        viewer_billings = {c for _, c, _ in chosen}
        to_review = [
            b
            for b, _ in db.session.execute(
                sa.select(Billing.id, Billing.created_by_contact_id)
                .join(Commitment)
                .where(
                    Billing.period_id == fx.open_period_id,
                    Billing.status == "under_review",
                    Commitment.number.notlike(f"{gen.BIG_PREFIX}%"),
                )
                .order_by(Billing.id)
            ).all()
            if b not in viewer_billings
        ]
        links = []
        for contact_id, billing_id, draft_id in chosen:
            _, token = tokens.issue_link(db.session.get(Contact, contact_id))
            links.append((contact_id, billing_id, draft_id, token))
        admins = [
            (u.id, u.email)
            for u in db.session.scalars(
                sa.select(User).where(User.role == "admin").order_by(User.id)
            )
        ]
        db.session.commit()
        db.engine.dispose()
    return {"links": links, "admins": admins, "to_review": to_review}


# ------------------------------------------------------------------ server


def start_server(
    url: str,
    secret: str,
    port: int,
    workers: int,
    threads: int,
    app: str = "wsgi:app",
    probe_path: str = "/portal/new-link",
):
    """gunicorn on 127.0.0.1; returns the process once it answers."""
    uploads = tempfile.mkdtemp(prefix="pb-load-uploads-")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": secret,
        "PUBLIC_BASE_URL": f"http://{HOST}:{port}",
        "UPLOAD_FOLDER": uploads,
        "PORTAL_LINK_RATE_LIMIT": "100000 per minute",
        "PORTAL_LINK_VIEW_RATE_LIMIT": "100000 per minute",
        "PORTAL_LOGIN_RATE_LIMIT": "1000 per minute",
    }
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--log-level",
        "warning",
        app,
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    probe = Browser(port, "probe")
    for _ in range(100):
        try:
            if probe.request("GET", probe_path)[0] == 200:
                return process
        except OSError:
            time.sleep(0.2)
    stop_server(process)
    raise SystemExit("gunicorn did not start")


CLOCK_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def workers_cpu(master: int) -> float:
    """User + system CPU seconds of the gunicorn master's worker processes so far.

    Read from ``/proc/<pid>/stat`` (fields 14 and 15, in clock ticks) of every
    process whose parent is ``master``.
    """
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == master:  # field 4: the parent
            total += int(fields[11]) + int(fields[12])  # fields 14, 15
    return total / CLOCK_TICK


def stop_server(process: subprocess.Popen) -> None:
    """Stop the gunicorn we started (its own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


# ------------------------------------------------------------------ actions


def sign_in_contact(port: int, contact_id: int, token: str) -> Browser:
    browser = Browser(port, f"contact {contact_id}")
    status, _, html, _ = browser.request("GET", f"/portal/link/{token}")
    match = CSRF.search(html)
    if status != 200 or not match:
        raise RuntimeError(f"link page for contact {contact_id}: HTTP {status}")
    status, headers, _, _ = browser.request(
        "POST", f"/portal/link/{token}", {"csrf_token": match[1]}
    )
    if status != 302:
        raise RuntimeError(f"link exchange for contact {contact_id}: HTTP {status}")
    return browser


def sign_in_admin(port: int, email: str) -> Browser:
    browser = Browser(port, email)
    _, _, html, _ = browser.request("GET", "/admin/login")
    status, _, _, _ = browser.request(
        "POST",
        "/admin/login",
        {"csrf_token": CSRF.search(html)[1], "email": email, "password": gen.PASSWORD},
    )
    if status != 302:
        raise RuntimeError(f"admin login {email}: HTTP {status}")
    return browser


def _page(browser: Browser, stats: Stats, kind: str, path: str) -> str | None:
    """GET a page that must answer 200."""
    try:
        status, _, html, seconds = browser.request("GET", path)
    except OSError as exc:
        stats.error(kind, f"{path}: {exc}")
        return None
    stats.record(kind, seconds)
    if status != 200:
        stats.error(kind, f"{path}: HTTP {status}")
        return None
    return html


def _post_and_follow(
    browser: Browser, stats: Stats, kind: str, path: str, form: dict[str, Any]
) -> str | None:
    """POST, expect a redirect, GET its target (a browser would); the page."""
    try:
        status, headers, _, seconds = browser.request("POST", path, form)
    except OSError as exc:
        stats.error(kind, f"{path}: {exc}")
        return None
    stats.record(kind, seconds)
    location = headers.get("Location")
    if status != 302 or not location:
        stats.error(kind, f"POST {path}: HTTP {status}")
        return None
    target = urllib.parse.urlsplit(location)
    return _page(browser, stats, "page after " + kind, target.path)


def view(session: ContactSession, stats: Stats) -> None:
    _page(
        session.browser,
        stats,
        "contact page view",
        f"/portal/billings/{session.billing_id}",
    )


def home(session: ContactSession, stats: Stats) -> None:
    _page(session.browser, stats, "contact home", "/portal/")


def save(
    session: ContactSession,
    stats: Stats,
    ledger: Ledger,
    rng: random.Random,
    submit: bool,
) -> None:
    """Open the draft, change some amounts, save (or submit) it."""
    billing_id = session.draft_id
    html = _page(
        session.browser, stats, "contact page view", f"/portal/billings/{billing_id}"
    )
    if html is None:
        return
    form: dict[str, Any] = {
        "csrf_token": CSRF.search(html)[1],
        "version": VERSION.search(html)[1],
        "action": "submit" if submit else "save",
        "vendor_invoice_number": f"LOAD-{billing_id}",
        "notes": "",
    }
    values: dict[int, tuple[str, str]] = {}
    for name, sov_id, column, value in LINE_INPUT.findall(html):
        work, materials = values.get(int(sov_id), ("", ""))
        value = value.replace(",", "") or "0.00"
        if column == "work":
            work = value
            if rng.random() < 0.3:  # a little more work done this period
                work = str(Decimal(value) + Decimal(rng.randrange(1, 50)))
            form[name] = work
        else:
            materials = value
            form[name] = materials
        values[int(sov_id)] = (work, materials)
    kind = "submission" if submit else "draft save"
    page = _post_and_follow(
        session.browser, stats, kind, f"/portal/billings/{billing_id}", form
    )
    if page is None:
        return
    messages = flashes(page)
    wanted = "submitted" if submit else "Draft saved"
    if any(cat == "success" and wanted in text for cat, text in messages):
        with ledger.lock:
            ledger.saved[billing_id] = values
            if submit:
                ledger.submitted.add(billing_id)
                session.submitted = True
    else:
        stats.error(kind, f"billing {billing_id}: {messages}")


def review(admin: AdminSession, billing_id: int, stats: Stats, ledger: Ledger) -> None:
    """Open the review page, approve every line as shown, approve the billing."""
    html = _page(
        admin.browser, stats, "admin review page", f"/admin/billings/{billing_id}"
    )
    if html is None:
        return
    form: dict[str, Any] = {
        "csrf_token": CSRF.search(html)[1],
        "version": VERSION.search(html)[1],
        "decision": "approve",
        "comment": "",
    }
    for name, line_id, _, value in LINE_INPUT.findall(html):
        form[name] = value
        form[f"line-{line_id}-status"] = "approved"
        form[f"line-{line_id}-comment"] = ""
    page = _post_and_follow(
        admin.browser, stats, "approval", f"/admin/billings/{billing_id}/decide", form
    )
    if page is None:
        return
    messages = flashes(page)
    if any(cat == "success" and " is approved" in text for cat, text in messages):
        with ledger.lock:
            ledger.approved[billing_id] = admin.user_id
    else:
        stats.error("approval", f"billing {billing_id}: {messages}")


# ------------------------------------------------------------------ phases


def run_phase(
    name: str,
    seconds: float,
    max_requests: int,
    threads: int,
    contacts: queue.Queue,
    admins: queue.Queue,
    to_review: queue.Queue,
    ledger: Ledger,
    mix: bool,
) -> tuple[Stats, float]:
    """Threads act until the time is up or the request cap is reached."""
    stats = Stats()
    deadline = time.monotonic() + seconds

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline and stats.requests < max_requests:
            roll = rng.random() if mix else 0.0
            if roll >= 0.90:  # 10 %: an admin reviews and approves a billing
                try:
                    billing_id = to_review.get_nowait()
                except queue.Empty:
                    continue
                admin = admins.get()
                try:
                    review(admin, billing_id, stats, ledger)
                finally:
                    admins.put(admin)
                continue
            session = contacts.get()
            try:
                if roll < 0.60 or session.draft_id is None or session.submitted:
                    view(session, stats)  # 60 % (and whoever has nothing to edit)
                elif roll < 0.68:
                    home(session, stats)  # 8 %
                elif roll < 0.86:
                    save(session, stats, ledger, rng, submit=False)  # 18 %
                else:
                    save(session, stats, ledger, rng, submit=True)  # 4 %
            finally:
                contacts.put(session)

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return stats, time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, stats: Stats, elapsed: float) -> str:
    lines = [
        f"### {name}: {stats.requests:,} requests in {elapsed:.1f} s "
        f"= {stats.requests / elapsed:,.0f} requests/s",
        "",
        "| request | count | per second | p50 ms | p90 ms | p95 ms | p99 ms | max ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    kinds = sorted(set(stats.times) | set(stats.errors))
    for kind in kinds:
        ms = [t * 1000 for t in stats.times.get(kind, [])] or [0.0]
        lines.append(
            f"| {kind} | {len(stats.times.get(kind, [])):,} | "
            f"{len(stats.times.get(kind, [])) / elapsed:,.1f} | "
            f"{statistics.median(ms):,.1f} | {percentile(ms, 0.90):,.1f} | "
            f"{percentile(ms, 0.95):,.1f} | {percentile(ms, 0.99):,.1f} | "
            f"{max(ms):,.1f} | {len(stats.errors.get(kind, []))} |"
        )
    for kind, errors in stats.errors.items():
        for message in errors[:5]:
            lines.append(f"\nerror ({kind}): {message}")
    return "\n".join(lines)


# ------------------------------------------------------------------ wrk

WRK_SCRIPT = """
local targets = {%s}
local cap = %d
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  n = 0
  not_ok = 0
  done_count = 0
end
function request()
  n = n + 1
  local t = targets[(n %% #targets) + 1]
  return wrk.format("GET", t[2], {["Cookie"] = t[1]})
end
function response(status, headers, body)
  done_count = done_count + 1
  if status ~= 200 then not_ok = not_ok + 1 end
  if done_count == cap then
    -- wrk itself sleeps for -d whatever its threads do: SIGINT ends the run
    -- now (and prints the summary), so the count is the run's length and no
    -- idle connection is left open to hold a sync worker. In the background:
    -- system() ignores SIGINT in its caller while it waits.
    os.execute("(sleep 0.01; kill -INT $PPID) &")
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local bad, total = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("not_ok")
    total = total + t:get("done_count")
  end
  io.write(string.format("RESULT answered=%%d not_200=%%d\\n", total, bad))
  for _, p in ipairs({50, 90, 95, 99}) do
    io.write(string.format("PCT %%d %%.1f\\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("MAX %%.1f\\n", latency.max / 1000))
end
"""


@dataclass
class WrkRun:
    """One wrk run over a fixed number of requests."""

    answered: int
    errors: int
    rate: float  # requests per second
    pct: dict[str, float]  # "50", "90", "95", "99" → ms
    max_ms: float
    elapsed: float
    cpu_ms: float | None = None  # the workers' user + sys per request


def wrk_run(
    port: int,
    pairs: list[tuple[str, str]],
    max_requests: int,
    connections: int,
    threads: int = 2,
    seconds: float = 600,
    master: int | None = None,
) -> WrkRun:
    """wrk (C, so the client takes little CPU) over ``pairs`` (cookie, path).

    Each wrk thread stops after its share of ``max_requests`` answers (or after
    ``seconds``); anything but a 200 (an expired session would be a 302 to the
    sign-in page) counts as an error. With ``master`` (the gunicorn master's pid),
    the workers' CPU over the run is divided by the answered requests.
    """
    targets = ", ".join(
        "{" + lua_string(cookie) + ", " + lua_string(path) + "}"
        for cookie, path in pairs
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(WRK_SCRIPT % (targets, max(1, max_requests // threads)))
        script = fh.name
    try:
        cpu = workers_cpu(master) if master else 0.0
        started = time.monotonic()
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "30s",
                "-s",
                script,
                f"http://{HOST}:{port}/",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 120,
        ).stdout
        elapsed = time.monotonic() - started
        cpu = workers_cpu(master) - cpu if master else 0.0
    finally:
        os.unlink(script)
    answered, not_200 = map(
        int, re.search(r"answered=(\d+) not_200=(\d+)", out).groups()
    )
    socket_errors = re.search(r"Socket errors: (.*)", out)
    per_second = re.search(r"Requests/sec:\s*([\d.]+)", out)
    return WrkRun(
        answered=answered,
        errors=not_200
        + (
            sum(int(n) for n in re.findall(r"\d+", socket_errors[1]))
            if socket_errors
            else 0
        ),
        rate=float(per_second[1]) if per_second else answered / elapsed,
        pct={k: float(v) for k, v in re.findall(r"PCT (\d+) ([\d.]+)", out)},
        max_ms=float(re.search(r"MAX ([\d.]+)", out)[1]),
        elapsed=elapsed,
        cpu_ms=cpu * 1000 / answered if master and answered else None,
    )


def cookie_of(browser: Browser) -> str:
    return "; ".join(f"{k}={v}" for k, v in browser.cookies.items())


def wrk_views(
    port: int,
    sessions: list[ContactSession],
    seconds: float,
    max_requests: int,
    connections: int,
    threads: int = 2,
) -> str:
    """Contact page views driven by wrk, as one table."""
    pairs = [
        (cookie_of(s.browser), f"/portal/billings/{s.billing_id}") for s in sessions
    ]
    run = wrk_run(port, pairs, max_requests, connections, threads, seconds)
    return "\n".join(
        [
            f"### views (wrk, {connections} connections): {run.answered:,} requests "
            f"= {run.rate:,.0f} requests/s",
            "",
            "| request | count | per second | p50 ms | p90 ms | p95 ms | p99 ms | max ms | errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| contact page view | {run.answered:,} | {run.rate:,.1f} | "
            f"{run.pct['50']:,.1f} | {run.pct['90']:,.1f} | {run.pct['95']:,.1f} | "
            f"{run.pct['99']:,.1f} | {run.max_ms:,.1f} | {run.errors} |",
        ]
    )


def compare_with_bare(
    port: int,
    bare_port: int,
    master: int,
    bare_master: int,
    pages: dict[str, list[tuple[str, str]]],
    rounds: int,
    page_requests: int,
    bare_requests: int,
    connections: int,
    threads: int = 1,
) -> str:
    """Each page's throughput against the bare app's, alternated, same settings.

    Per round and page: wrk on the bare app (same gunicorn settings), then wrk on
    the page, each over a fixed request count, with the workers' CPU over each.
    One wrk thread, so the run ends exactly at the request count (each thread
    ends the whole run when it has its share).
    """
    bare_pairs = [("", "/__bench/bare")]
    lines = [
        f"### pages against a bare Flask app (wrk -t{threads} -c{connections}, "
        f"{page_requests:,} page requests and {bare_requests:,} bare ones per run, "
        f"alternated, {rounds} rounds)",
        "",
        "| round | page | page req/s | page CPU ms/req | page p50 ms | bare req/s "
        "| bare CPU ms/req | page / bare | errors |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratios: dict[str, list[float]] = defaultdict(list)
    cpus: dict[str, list[float]] = defaultdict(list)
    for number in range(1, rounds + 1):
        for name, pairs in pages.items():
            bare = wrk_run(
                bare_port,
                bare_pairs,
                bare_requests,
                connections,
                threads,
                master=bare_master,
            )
            page = wrk_run(
                port, pairs, page_requests, connections, threads, master=master
            )
            ratios[name].append(page.rate / bare.rate)
            cpus[name].append(page.cpu_ms or 0.0)
            lines.append(
                f"| {number} | {name} | {page.rate:,.1f} | {page.cpu_ms or 0:,.2f} | "
                f"{page.pct['50']:,.1f} | {bare.rate:,.0f} | {bare.cpu_ms or 0:,.3f} | "
                f"{page.rate / bare.rate:.2%} | {page.errors + bare.errors} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
    lines.append("")
    for name in pages:
        lines.append(
            f"{name}: page / bare median {statistics.median(ratios[name]):.2%} "
            f"(rounds {', '.join(f'{r:.2%}' for r in ratios[name])}); "
            f"CPU median {statistics.median(cpus[name]):,.2f} ms per view."
        )
    return "\n".join(lines)


def lua_string(text: str) -> str:
    """A Lua string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ------------------------------------------------------------------ checks


def verify(url: str, ledger: Ledger) -> list[str]:
    """Every confirmed save, submission and approval is in the database."""
    from portal.models import (
        AuditEvent,
        Billing,
        BillingLine,
        OutboxMessage,
        RevisionSnapshot,
    )

    problems: list[str] = []
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        session = Session(bind=conn)
        for billing_id, values in ledger.saved.items():
            lines = {
                bl.sov_line_id: bl
                for bl in session.scalars(
                    sa.select(BillingLine).where(BillingLine.billing_id == billing_id)
                )
            }
            for sov_id, (work, materials) in values.items():
                bl = lines.get(sov_id)
                if bl is None or (bl.claimed_work, bl.claimed_materials) != (
                    Decimal(work),
                    Decimal(materials),
                ):
                    problems.append(f"billing {billing_id} line {sov_id}: save lost")
        for billing_id in ledger.submitted:
            billing = session.get(Billing, billing_id)
            if billing.status == "draft" or billing.submitted_at is None:
                problems.append(f"billing {billing_id}: submission lost")
            snapshots = session.scalar(
                sa.select(sa.func.count(RevisionSnapshot.id)).where(
                    RevisionSnapshot.billing_id == billing_id
                )
            )
            audit = session.scalar(
                sa.select(sa.func.count(AuditEvent.id)).where(
                    AuditEvent.object_type == "billing",
                    AuditEvent.object_id == billing_id,
                    AuditEvent.action == "billing.submit",
                )
            )
            mails = session.scalar(
                sa.select(sa.func.count(OutboxMessage.id)).where(
                    OutboxMessage.kind == "billing_submitted",
                    OutboxMessage.object_id == billing_id,
                )
            )
            if not snapshots or not audit or not mails:
                problems.append(
                    f"billing {billing_id}: submitted without snapshot/audit/mail"
                )
        for billing_id, admin_id in ledger.approved.items():
            billing = session.get(Billing, billing_id)
            if (
                billing.status not in ("approved", "approved_as_noted")
                or not billing.approved_figures
                or billing.decided_by_id != admin_id
            ):
                problems.append(f"billing {billing_id}: approval lost")
            audit = session.scalar(
                sa.select(sa.func.count(AuditEvent.id)).where(
                    AuditEvent.object_type == "billing",
                    AuditEvent.object_id == billing_id,
                    AuditEvent.action == "billing.approve",
                )
            )
            if not audit:
                problems.append(f"billing {billing_id}: approval without audit event")
        session.close()
    engine.dispose()
    return problems


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="the generated database")
    parser.add_argument("--copy-name", default="bench_pb_load")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers"
    )
    parser.add_argument("--server-threads", type=int, default=1)
    parser.add_argument("--threads", type=int, default=16, help="client threads")
    parser.add_argument("--contacts", type=int, default=120)
    parser.add_argument("--views-seconds", type=float, default=20)
    parser.add_argument("--mix-seconds", type=float, default=40)
    parser.add_argument("--max-requests", type=int, default=50_000)
    parser.add_argument("--keep", action="store_true", help="keep the copy")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of page against bare (wrk)"
    )
    parser.add_argument(
        "--page-requests", type=int, default=1000, help="requests per page run"
    )
    parser.add_argument(
        "--bare-requests", type=int, default=10000, help="requests per bare run"
    )
    parser.add_argument(
        "--views-tool",
        choices=("wrk", "python"),
        default="wrk" if shutil.which("wrk") else "python",
        help="what drives the views phase (wrk: Debian's wrk, if installed)",
    )
    parser.add_argument(
        "--connections", type=int, default=16, help="wrk's open connections"
    )
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgres"):
        raise SystemExit("The load test runs on PostgreSQL (several gunicorn workers).")
    secret = secrets.token_urlsafe(32)
    url = clone_database(args.database_url, args.copy_name)
    print(f"Copied the database to {args.copy_name}.", file=sys.stderr)
    try:
        plan = prepare(url, secret, args.contacts)
        process = start_server(
            url, secret, args.port, args.workers, args.server_threads
        )
        bare_process = None
        try:
            if args.views_tool == "wrk" and args.views_seconds > 0:
                bare_process = start_server(
                    url,
                    secret,
                    args.port + 1,
                    args.workers,
                    args.server_threads,
                    app="benchmarks.bare_wsgi:app",
                    probe_path="/__bench/bare",
                )
            contacts: queue.Queue = queue.Queue()
            for contact_id, billing_id, draft_id, token in plan["links"]:
                browser = sign_in_contact(args.port, contact_id, token)
                contacts.put(ContactSession(browser, contact_id, billing_id, draft_id))
            admins: queue.Queue = queue.Queue()
            for user_id, email in plan["admins"]:
                admins.put(AdminSession(sign_in_admin(args.port, email), user_id))
            to_review: queue.Queue = queue.Queue()
            for billing_id in plan["to_review"]:
                to_review.put(billing_id)
            print(
                f"Signed in {contacts.qsize()} contacts and {admins.qsize()} admins; "
                f"gunicorn {args.workers} workers × {args.server_threads} threads, "
                f"{args.threads} client threads.",
                file=sys.stderr,
            )
            ledger = Ledger()
            out = []
            for name, seconds, mix in (
                ("views", args.views_seconds, False),
                ("mix", args.mix_seconds, True),
            ):
                if seconds <= 0:
                    continue
                if name == "views" and args.views_tool == "wrk":
                    assert bare_process is not None
                    out.append(
                        wrk_views(
                            args.port,
                            list(contacts.queue),
                            seconds,
                            args.max_requests,
                            args.connections,
                        )
                    )
                    print(out[-1], file=sys.stderr)
                    admin_cookie = cookie_of(list(admins.queue)[0].browser)
                    pages = {
                        "contact billing page": [
                            (cookie_of(c.browser), f"/portal/billings/{c.billing_id}")
                            for c in list(contacts.queue)
                        ],
                        "admin review page": [
                            (admin_cookie, f"/admin/billings/{b}")
                            for b in list(to_review.queue)[:50]
                        ],
                    }
                    out.append(
                        compare_with_bare(
                            args.port,
                            args.port + 1,
                            process.pid,
                            bare_process.pid,
                            pages,
                            args.rounds,
                            args.page_requests,
                            args.bare_requests,
                            args.connections,
                        )
                    )
                    print(out[-1], file=sys.stderr)
                    continue
                stats, elapsed = run_phase(
                    name,
                    seconds,
                    args.max_requests,
                    args.threads,
                    contacts,
                    admins,
                    to_review,
                    ledger,
                    mix,
                )
                out.append(report(name, stats, elapsed))
                print(out[-1], file=sys.stderr)
        finally:
            stop_server(process)
            if bare_process is not None:
                stop_server(bare_process)
        problems = verify(url, ledger)
        out.append(
            f"\nConfirmed by the server: {len(ledger.saved)} billings saved, "
            f"{len(ledger.submitted)} submitted, {len(ledger.approved)} approved. "
            + (
                "All are in the database."
                if not problems
                else f"{len(problems)} PROBLEMS:\n" + "\n".join(problems[:20])
            )
        )
        print("\n\n".join(out))
        if problems:
            raise SystemExit(1)
    finally:
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
