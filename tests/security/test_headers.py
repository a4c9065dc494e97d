"""Security headers on every response, pages that satisfy their own CSP, and
cookie flags (SPEC §6, issue 7). Every GET route is walked as the role that
uses it; error pages, downloads, static files and the JSON API too."""

from __future__ import annotations

import os
import re

import pytest

from portal.extensions import db

from .. import factories as f
from ..conftest import make_test_app
from . import crawl

STRICT_REFERRERS = {
    "same-origin",
    "no-referrer",
    "strict-origin",
    "strict-origin-when-cross-origin",
}


def csp_directives(value: str) -> dict[str, list[str]]:
    """``{"script-src": ["'self'"], ...}``."""
    out = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


def header_problems(response) -> list[str]:
    """What is missing or weak in a response's security headers."""
    problems = []
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    directives = csp_directives(csp)
    if not csp:
        problems.append("no Content-Security-Policy")
    elif "sandbox" in directives:  # downloads: nothing may run at all
        if directives.get("default-src") != ["'none'"]:
            problems.append("sandboxed CSP without default-src 'none'")
    else:
        for name in ("script-src", "style-src", "default-src"):
            sources = directives.get(name) or directives.get("default-src", [])
            if sources != ["'self'"]:
                problems.append(f"{name} is {sources}, not only 'self'")
        for name, want in (
            ("frame-ancestors", ["'none'"]),
            ("object-src", ["'none'"]),
            ("base-uri", ["'self'"]),
            ("form-action", ["'self'"]),
        ):
            if directives.get(name) != want:
                problems.append(f"{name} is {directives.get(name)}, not {want}")
        if "'unsafe-inline'" in csp or "'unsafe-eval'" in csp:
            problems.append("CSP allows unsafe-inline/unsafe-eval")
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if headers.get("X-Frame-Options") != "DENY":
        problems.append("no X-Frame-Options: DENY")
    if headers.get("Referrer-Policy") not in STRICT_REFERRERS:
        problems.append(f"Referrer-Policy is {headers.get('Referrer-Policy')}")
    return problems


def _check(response, where: str, problems: list[str]) -> None:
    problems += [f"{where}: {p}" for p in header_problems(response)]
    if "text/html" in response.headers.get("Content-Type", ""):
        page = crawl.parse_page(response.get_data(as_text=True))
        problems += [f"{where}: {p}" for p in page.csp_problems]


@pytest.mark.parametrize("area", ["admin", "exports", "contact", "api", "other"])
def test_every_get_route_has_headers_and_satisfies_the_csp(
    app, client, auth, ids, tally, area: str
) -> None:
    """Each GET route as its user (and every page variant of the full world)."""
    from portal.accounts import api_tokens
    from portal.models import User

    headers = {}
    if area == "api":
        with app.app_context():
            _, raw = api_tokens.create_token(db.session.get(User, ids.finance_id), "h")
            db.session.commit()
        headers = {"Authorization": f"Bearer {raw}"}
    problems: list[str] = []
    seen = 0
    for route in crawl.routes(app):
        if route.area != area or "GET" not in route.methods:
            continue
        crawl.sign_in(auth, ids, crawl.role_for(route.endpoint))
        for variant in crawl.page_variants(route):
            url = crawl.url_for_route(app, route, ids, variant)
            response = client.get(url, headers=headers)
            seen += 1
            assert response.status_code in (200, 302), (
                route.endpoint,
                response.status_code,
            )
            _check(response, route.endpoint, problems)
            if route.area == "contact":
                assert "no-store" in response.headers.get("Cache-Control", ""), url
    tally(seen)
    assert problems == []
    assert seen >= (2 if area == "other" else 3)


def test_error_pages_have_the_headers(app, database_url, tmp_path, tally) -> None:
    """401, 403, 404, 405, 413, 429 and 500 answers (pages and API JSON)."""
    app = make_test_app(  # (the ``app`` fixture empties the tables afterwards)
        database_url,
        tmp_path,
        RATELIMIT_ENABLED=True,
        NEW_LINK_RATE_LIMIT="1 per minute",
        MAX_CONTENT_LENGTH=1024,
        PROPAGATE_EXCEPTIONS=False,
    )

    @app.route("/__test/boom")
    def boom():
        raise RuntimeError("boom")

    client = app.test_client()
    with app.app_context():
        viewer = f.make_user("viewer").id
        db.session.commit()
    answers = {
        401: client.get("/portal/"),
        404: client.get("/no/such/page"),
        405: client.delete("/admin/login"),
        413: client.post("/portal/new-link", data={"email": "x" * 4096}),
        500: client.get("/__test/boom"),
        "api-401": client.get("/exports/api/v1/billings"),
        "api-404": client.get("/exports/api/v1/nothing"),
    }
    client.post("/portal/new-link", data={"email": "a@b.example"})
    answers[429] = client.post("/portal/new-link", data={"email": "a@b.example"})
    from ..conftest import Auth

    Auth(app, client).login_user(viewer)
    answers[403] = client.get("/admin/users")
    problems: list[str] = []
    for expected, response in answers.items():
        code = expected if isinstance(expected, int) else int(expected[-3:])
        assert response.status_code == code, (expected, response.status_code)
        _check(response, str(expected), problems)
        assert "Traceback" not in response.get_data(as_text=True)
    tally(len(answers))
    assert problems == []
    with app.app_context():
        db.engine.dispose()


def test_static_files_and_downloads_have_the_headers(app, client, auth, ids) -> None:
    problems: list[str] = []
    for name in sorted(os.listdir(os.path.join(app.root_path, "static"))):
        _check(client.get(f"/static/{name}"), f"static/{name}", problems)
    _check(
        client.get("/bootstrap/static/css/bootstrap.min.css"), "bootstrap css", problems
    )
    auth.login_user(ids.admin_id)
    for url in (
        f"/admin/attachments/{ids.attachment_id}",
        f"/admin/billings/{ids.billing2_id}/pdf",
        f"/admin/claims/{ids.sent_claim_id}/pdf",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        _check(response, url, problems)
    auth.login_user(ids.finance_id)
    response = client.get(f"/exports/batches/{ids.batch_id}/download")
    _check(response, "batch download", problems)
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert problems == []


def test_static_scripts_need_no_unsafe_csp() -> None:
    """No eval, Function(), string timers or HTML built from strings in our JS."""
    folder = os.path.join(os.path.dirname(__file__), "..", "..", "portal", "static")
    bad = re.compile(
        r"\beval\(|new Function\(|setTimeout\(\s*[\"']|setInterval\(\s*[\"']"
        r"|document\.write|insertAdjacentHTML|outerHTML\s*="
    )
    inner = re.compile(
        r"\.innerHTML\s*=(?!\s*label;)"
    )  # app.js restores its own markup
    for name in os.listdir(folder):
        if name.endswith(".js"):
            with open(os.path.join(folder, name), encoding="utf-8") as fh:
                source = fh.read()
            assert not bad.search(source), name
            assert not inner.search(source), name


def test_templates_have_no_inline_script_style_or_handlers() -> None:
    """The CSP forbids them; check the sources too (pages not reached by the walk)."""
    root = os.path.join(os.path.dirname(__file__), "..", "..", "templates")
    problems = []
    for folder, _, files in os.walk(root):
        if os.path.basename(folder) == "mail":
            continue  # mail bodies are read by mail clients, not under our CSP
        for name in files:
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            for pattern, what in (
                (r"<script(?![^>]*\bsrc=)[^>]*>", "inline <script>"),
                (r"\sstyle\s*=", "style= attribute"),
                (r"<style\b", "<style> element"),
                (r"\son[a-z]+\s*=", "event handler attribute"),
                (r"javascript:", "javascript: URL"),
            ):
                if re.search(pattern, text, re.I):
                    problems.append(f"{os.path.relpath(path, root)}: {what}")
    assert problems == []


# ------------------------------------------------------------------ cookies


def _cookie(response, name: str) -> str:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return header
    raise AssertionError(f"no {name} cookie set")


@pytest.mark.parametrize(
    "base", ["https://billing.example.com", "http://127.0.0.1:5000"]
)
def test_session_cookie_flags_on_real_sign_ins(
    app, database_url, tmp_path, base: str
) -> None:
    """Staff sign-in and a contact's link exchange: HttpOnly, SameSite=Lax, and
    Secure unless the configured base URL is local plain HTTP (plus HSTS)."""
    from portal.accounts import tokens
    from portal.models import Contact

    app = make_test_app(  # (the ``app`` fixture empties the tables afterwards)
        database_url, tmp_path, PUBLIC_BASE_URL=base, SESSION_COOKIE_SECURE=None
    )
    secure = base.startswith("https")
    with app.app_context():
        user = f.make_user("admin", email="cookie@example.com")
        contact = f.make_contact(f.make_vendor(), email="c@example.com")
        _, token = tokens.issue_link(contact)
        db.session.commit()
        del user, contact
    scheme_base = base if secure else "http://localhost"
    staff = app.test_client()
    response = staff.post(
        "/admin/login",
        data={"email": "cookie@example.com", "password": f.PASSWORD},
        base_url=scheme_base,
    )
    assert response.status_code == 302
    person = app.test_client()
    exchanged = person.post(f"/portal/link/{token}", base_url=scheme_base)
    assert exchanged.status_code == 302
    for answer in (response, exchanged):
        cookie = _cookie(answer, "session")
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is secure
        assert ("Strict-Transport-Security" in answer.headers) is secure
    with app.app_context():
        assert db.session.query(Contact).count() == 1
        db.engine.dispose()


def test_the_page_checker_catches_what_the_csp_would_block() -> None:
    """The walk above can fail: each kind of inline code is reported."""
    page = crawl.parse_page(
        "<html><head><style>p{}</style>"
        '<script src="https://cdn.example/x.js"></script>'
        '<link rel="stylesheet" href="//cdn.example/x.css"></head>'
        '<body><script>alert(1)</script><p style="color:red" onclick="x()">'
        '<a href="javascript:alert(1)">x</a></p>'
        '<form method="post" action="/x"><input name="a" value="1">'
        '<textarea name="b">\nhi</textarea><select name="c"><option value="d" selected>'
        "</select></form></body></html>"
    )
    kinds = " | ".join(page.csp_problems)
    for expected in (
        "<style> element",
        "from another origin",
        "inline <script>",
        "inline style attribute",
        "event handler attribute",
        "javascript:",
    ):
        assert expected in kinds, expected
    assert page.forms[0].defaults() == {"a": "1", "b": "hi", "c": "d"}
