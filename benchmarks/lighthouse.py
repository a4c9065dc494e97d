"""Lighthouse performance of four pages, signed in for real (issue 16 item 4).

    npm i -E --prefix /tmp/lh lighthouse@12.2.3      # once (13 needs Node 22)
    python benchmarks/lighthouse.py --lighthouse /tmp/lh/node_modules/.bin/lighthouse

Loads the demo into a fresh SQLite file (``portal demo --no-serve``), serves
it with gunicorn on 127.0.0.1 (``--port``, never 5000), signs the contact in
through the demo's magic link and the admin and finance users with their
passwords, starts a draft billing for the contact, then runs Lighthouse
(headless Chromium, its default mobile profile with simulated throttling,
performance only) on:

- the contact's billing form (the draft),
- the review page of the latest billing,
- the period dashboard,
- the exports page (finance).

Each page's session cookie goes in Lighthouse's ``--extra-headers``. Prints
one line per page: score, transferred KiB, and the largest savings Lighthouse
still reports.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Browser:
    """A cookie jar and plain http.client requests (no redirects followed)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        headers = {"Host": f"{HOST}:{self.port}"}
        if self.cookies:
            headers["Cookie"] = self.cookie_header()
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    key, _, val = value.split(";", 1)[0].partition("=")
                    self.cookies[key.strip()] = val.strip()
            return response.status, dict(response.getheaders()), text
        finally:
            conn.close()

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def post_form(self, path: str, page: str, **fields: str) -> tuple[int, str]:
        match = CSRF.search(page)
        if not match:
            raise RuntimeError(f"no CSRF token on the page before POST {path}")
        status, headers, _ = self.request(
            "POST", path, {"csrf_token": match[1], **fields}
        )
        return status, headers.get("Location", "")


def load_demo(env: dict[str, str], port: int) -> dict[str, str]:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "portal"), "demo", "--no-serve"],
        env=env | {"PORTAL_PUBLIC_BASE_URL": f"http://{HOST}:{port}"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    out = done.stdout
    return {
        "admin": re.search(r"Admin login:\s+(\S+)", out)[1],  # type: ignore[index]
        "finance": re.search(r"Finance:\s+(\S+)", out)[1],  # type: ignore[index]
        "password": re.search(r"password:\s+(\S+)", out)[1],  # type: ignore[index]
        "link": re.search(r"Contact link:\s+(\S+)", out)[1],  # type: ignore[index]
    }


def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        "2",
        "wsgi:app",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    for _ in range(300):
        try:
            http.client.HTTPConnection(HOST, port, timeout=1).request("HEAD", "/")
            return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("gunicorn did not start")


def sign_in_staff(port: int, email: str, password: str) -> Browser:
    browser = Browser(port)
    _, _, page = browser.request("GET", "/admin/login")
    status, _ = browser.post_form("/admin/login", page, email=email, password=password)
    if status != 302:
        raise RuntimeError(f"login {email}: HTTP {status}")
    return browser


def sign_in_contact(port: int, link: str) -> Browser:
    browser = Browser(port)
    path = urllib.parse.urlsplit(link).path
    _, _, page = browser.request("GET", path)
    status, _ = browser.post_form(path, page)
    if status != 302:
        raise RuntimeError(f"magic link: HTTP {status}")
    return browser


def contact_form(contact: Browser) -> str:
    """A draft billing of the contact's: started here if there is none."""
    _, _, home = contact.request("GET", "/portal/")
    start = re.search(r'action="(/portal/commitments/\d+/billings)"', home)
    if start:
        status, location = contact.post_form(start[1], home)
        if status == 302 and "/portal/billings/" in location:
            return urllib.parse.urlsplit(location).path
    found = re.findall(r'href="(/portal/billings/\d+)"', home)
    if not found:
        raise RuntimeError("the contact has no billing to open")
    return found[0]


def latest(browser: Browser, list_path: str, pattern: str) -> str:
    _, _, page = browser.request("GET", list_path)
    ids = sorted({int(n) for n in re.findall(pattern, page)})
    if not ids:
        raise RuntimeError(f"nothing matches {pattern} on {list_path}")
    return pattern.replace(r"(\d+)", str(ids[-1])).replace("\\", "")


def lighthouse(tool: str, url: str, cookie: str, out: Path) -> dict:
    env = dict(os.environ)
    env.setdefault("CHROME_PATH", "/usr/bin/chromium")
    subprocess.run(
        [
            tool,
            url,
            "--only-categories=performance",
            "--output=json",
            f"--output-path={out}",
            "--quiet",
            "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
            f"--extra-headers={json.dumps({'Cookie': cookie})}",
        ],
        env=env,
        check=True,
        timeout=300,
    )
    return json.loads(out.read_text())


def summary(report: dict) -> str:
    audits = report["audits"]
    score = round(report["categories"]["performance"]["score"] * 100)
    kib = audits["total-byte-weight"]["numericValue"] / 1024
    savings = []
    for audit in audits.values():
        details = audit.get("details") or {}
        saved = details.get("overallSavingsBytes") or 0
        if saved >= 1024:
            savings.append((saved, audit["id"]))
    worst = ", ".join(
        f"{name} {saved / 1024:.0f} KiB" for saved, name in sorted(savings)[::-1][:3]
    )
    fcp = audits["first-contentful-paint"]["displayValue"]
    lcp = audits["largest-contentful-paint"]["displayValue"]
    return f"{score:3d}  {kib:6.0f} KiB  FCP {fcp:>7}  LCP {lcp:>7}  {worst or '-'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--lighthouse", default=shutil.which("lighthouse") or "lighthouse"
    )
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--keep", help="write the JSON reports to this folder")
    args = parser.parse_args()
    if args.port == 5000:
        parser.error("port 5000 is taken by others on this machine")
    work = Path(tempfile.mkdtemp(prefix="pb-lighthouse-"))
    env = dict(os.environ)
    env.update(
        {
            "SECRET_KEY": "lighthouse-benchmark-secret-key-not-for-production",
            "PORTAL_SQLALCHEMY_DATABASE_URI": f"sqlite:///{work / 'demo.db'}",
            "PORTAL_UPLOAD_FOLDER": str(work / "uploads"),
            "PORTAL_PUBLIC_BASE_URL": f"http://{HOST}:{args.port}",
            "PORTAL_MAIL_TRANSPORT": "console",
        }
    )
    demo = load_demo(env, args.port)
    server = start_server(env, args.port)
    try:
        contact = sign_in_contact(args.port, demo["link"])
        admin = sign_in_staff(args.port, demo["admin"], demo["password"])
        finance = sign_in_staff(args.port, demo["finance"], demo["password"])
        pages = [
            ("contact billing form", contact, contact_form(contact)),
            (
                "billing review",
                admin,
                latest(admin, "/admin/billings", r"/admin/billings/(\d+)"),
            ),
            (
                "period dashboard",
                admin,
                latest(admin, "/admin/periods", r"/admin/periods/(\d+)"),
            ),
            ("exports", finance, "/exports/"),
        ]
        out = Path(args.keep) if args.keep else work
        out.mkdir(parents=True, exist_ok=True)
        print(
            f"{'page':22} {'path':28} score  transfer  timings / largest savings left"
        )
        for name, browser, path in pages:
            status, _, _ = browser.request("GET", path)
            if status != 200:
                raise RuntimeError(f"{name} {path}: HTTP {status}")
            report = lighthouse(
                args.lighthouse,
                f"http://{HOST}:{args.port}{path}",
                browser.cookie_header(),
                out / f"{name.replace(' ', '-')}.json",
            )
            print(f"{name:22} {path:28} {summary(report)}", flush=True)
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
