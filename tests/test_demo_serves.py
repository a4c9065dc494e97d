"""The README's first command really serves (issue 14, item 1).

Runs ``portal demo --port P`` as a subprocess with no configuration, waits for
the port, fetches the printed admin login and the printed magic link over HTTP,
signs the contact in, asks for a fresh link and sees that mail printed on the
console while the server runs; then stops it.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def served_demo(tmp_path: Path):
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("PORTAL_", "DATABASE_URL", "SECRET_KEY", "MAIL_", "PUBLIC_BASE_URL")
        )
    }
    env["PORTAL_SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'demo.db'}"
    env["PYTHONUNBUFFERED"] = "1"
    script = os.path.join(os.path.dirname(sys.executable), "portal")
    out_path = tmp_path / "stdout.txt"
    with out_path.open("w") as out, (tmp_path / "stderr.txt").open("w") as err:
        proc = subprocess.Popen(
            [script, "demo", "--port", str(port), "--mail-interval", "0.5"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    try:
        _wait_for(lambda: _port_open(port) or proc.poll() is not None, 120, "the port")
        assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()[-3000:]
        yield port, out_path
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_portal_demo_serves_on_the_given_port(served_demo) -> None:
    port, out_path = served_demo
    banner = out_path.read_text()
    base = f"http://127.0.0.1:{port}"
    # The banner and every mail use the port given, not :5000.
    assert f"Back office:  {base}/admin/" in banner
    assert f"Serving on {base}/" in banner
    assert ":5000" not in banner
    admin_url = re.search(r"Back office:\s+(\S+)", banner).group(1)
    link = re.search(r"Contact link: (\S+)", banner).group(1)
    assert link.startswith(f"{base}/portal/link/")
    assert re.findall(r"https?://[^\s/]+", banner) == [base] * len(
        re.findall(r"https?://[^\s/]+", banner)
    )

    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(admin_url, timeout=10) as resp:
        page = resp.read().decode()
        assert resp.status == 200 and "/admin/login" in resp.url
        assert 'name="password"' in page
    with opener.open(link, timeout=10) as resp:
        page = resp.read().decode()
        assert resp.status == 200 and "Continue" in page
    form = urllib.parse.urlencode({"csrf_token": _csrf(page), "action": "continue"})
    with opener.open(link, data=form.encode(), timeout=10) as resp:
        assert resp.status == 200 and "/portal/" in resp.url
        assert "/portal/logout" in resp.read().decode()  # signed in

    # Mail queued while serving reaches the console, without any other command.
    with opener.open(f"{base}/portal/new-link", timeout=10) as resp:
        page = resp.read().decode()
    form = urllib.parse.urlencode(
        {"csrf_token": _csrf(page), "email": "dana@acme-concrete.example"}
    )
    with opener.open(f"{base}/portal/new-link", data=form.encode(), timeout=10):
        pass
    after_banner = len(banner)

    def new_mail() -> str | None:
        text = out_path.read_text()[after_banner:]
        match = re.search(
            r"--- mail to dana@acme-concrete\.example: .*?\n---", text, re.S
        )
        return match.group(0) if match else None

    mail = _wait_for(new_mail, 30, "the new link's mail on the console")
    fresh = re.search(r"(http://\S+/portal/link/\S+)", mail).group(1)
    assert fresh.startswith(f"{base}/portal/link/") and fresh != link
    with opener.open(fresh, timeout=10) as resp:
        assert resp.status == 200 and "Continue" in resp.read().decode()
