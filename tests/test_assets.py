"""Issue 16 item 4: pages that arrive small.

Compressed HTML, static URLs carrying their content's hash with a year of
caching (a few minutes without it), downloads left uncompressed, and only
the scripts a page uses.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import pytest
from flask import Response

from portal.web.assets import LONG_CACHE, SHORT_CACHE

STATIC = Path(__file__).resolve().parents[1] / "portal" / "static"
#: A signed CSRF token carries the second it was made: two fetches differ there.
CSRF_VALUE = re.compile(r'(name="csrf_token" value=")[^"]+"')


def same_page(html: str) -> str:
    return CSRF_VALUE.sub(r'\1…"', html)


@pytest.fixture
def page(app, client, auth, users):
    """The back-office dashboard, signed in, as HTML without compression."""
    auth.login_user(users["admin"])
    response = client.get("/admin/", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert "Content-Encoding" not in response.headers
    return response.get_data(as_text=True)


def test_a_page_asked_for_gzip_comes_back_gzipped(client, page) -> None:
    response = client.get("/admin/", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    body = response.get_data()
    assert len(body) < len(page.encode()) / 2
    assert int(response.headers["Content-Length"]) == len(body)
    assert same_page(gzip.decompress(body).decode()) == same_page(page)


def test_brotli_when_the_browser_takes_it(client, page) -> None:
    brotli = pytest.importorskip("brotli")
    response = client.get("/admin/", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert response.headers["Content-Encoding"] == "br"
    assert same_page(brotli.decompress(response.get_data()).decode()) == same_page(page)


def test_downloads_are_not_compressed(app) -> None:
    """PDFs and XLSX are already compressed: they go out as they are."""
    payload = b"%PDF-1.4 " + b"0" * 20_000

    @app.route("/_test/download/<kind>")
    def download(kind: str) -> Response:
        mimetypes = {
            "pdf": "application/pdf",
            "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "zip": "application/zip",
        }
        return Response(payload, mimetype=mimetypes[kind])

    client = app.test_client()
    for kind in ("pdf", "xlsx", "zip"):
        response = client.get(
            f"/_test/download/{kind}", headers={"Accept-Encoding": "gzip, br"}
        )
        assert "Content-Encoding" not in response.headers, kind
        assert response.get_data() == payload


def _version(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def test_static_urls_carry_their_content_hash(page) -> None:
    for name in ("bootstrap.trimmed.min.css", "app.css", "app.js", "favicon.svg"):
        assert f"/static/{name}?v={_version(STATIC / name)}" in page, name
    bootstrap = re.findall(r'/bootstrap/static/[^"?]+\?v=[0-9a-f]{12}"', page)
    assert len(bootstrap) == 2  # Popper and Bootstrap's JS, served locally
    assert "cdn." not in page and "//cdn" not in page


def test_versioned_static_files_are_cached_for_a_year(client, page) -> None:
    urls = re.findall(r'(?:src|href)="(/(?:bootstrap/)?static/[^"]+\?v=[^"]+)"', page)
    assert len(urls) >= 4
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == LONG_CACHE, url


def test_unversioned_or_stale_static_urls_are_cached_briefly(client) -> None:
    for url in (
        "/static/app.css",
        "/static/app.css?v=000000000000",
        "/bootstrap/static/css/bootstrap.min.css",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == SHORT_CACHE, url


def test_static_files_are_compressed(client) -> None:
    response = client.get(
        "/bootstrap/static/css/bootstrap.min.css", headers={"Accept-Encoding": "gzip"}
    )
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.get_data()).startswith(b"@charset")


def test_only_the_trimmed_bootstrap_css_is_loaded(client, page) -> None:
    """Bootstrap's CSS trimmed to the rules the pages use (scripts/trim_css.sh):
    not the full bootstrap.min.css, and well under half its size."""
    assert "bootstrap.min.css" not in page
    full = client.get("/bootstrap/static/css/bootstrap.min.css").get_data()
    trimmed = (STATIC / "bootstrap.trimmed.min.css").read_bytes()
    assert trimmed.startswith(b'@charset "UTF-8";')
    assert len(trimmed) < len(full) / 2
    # What the pages and Bootstrap's JavaScript need at runtime is kept.
    for rule in (b".navbar-collapse", b".collapsing", b".alert-danger", b".is-invalid"):
        assert rule in trimmed, rule


def test_a_page_loads_only_the_scripts_it_uses(page) -> None:
    scripts = set(re.findall(r'<script src="/static/([^"?]+)', page))
    assert scripts == {"app.js"}
