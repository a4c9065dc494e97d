"""Finding the form that posts to each endpoint, and driving it from the test client."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.exceptions import HTTPException

from portal import create_app

from .. import factories as f
from . import crawl

#: Endpoints whose requests are JSON (fuzzed by their own tests).
JSON_ENDPOINTS = {"exports.api_batch_create"}
#: endpoint → (page endpoint, variant index, role): where its form is rendered.
_SOURCES: dict[str, tuple[str, int, str]] = {}


def post_endpoints() -> list[str]:
    """Every endpoint that takes a POST (read from a throwaway app's URL map)."""
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "collect-only",
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
        }
    )
    return sorted(
        {r.endpoint for r in crawl.routes(app) if "POST" in r.methods} - JSON_ENDPOINTS
    )


def endpoint_of(app: Flask, action: str, page_url: str) -> str | None:
    """The endpoint a form's action posts to."""
    path = urlsplit(action).path or urlsplit(page_url).path
    try:
        endpoint, _ = app.url_map.bind("localhost").match(path, method="POST")
    except HTTPException:
        return None
    return endpoint


def _crawl(app: Flask, client, auth, ids: SimpleNamespace) -> None:
    for route in crawl.routes(app):
        if "GET" not in route.methods or route.area in ("api", "other"):
            continue
        role = crawl.role_for(route.endpoint)
        crawl.sign_in(auth, ids, role)
        for index, variant in enumerate(crawl.page_variants(route)):
            url = crawl.url_for_route(app, route, ids, variant)
            response = client.get(url)
            if "html" not in response.headers.get("Content-Type", ""):
                continue
            for form in crawl.parse_page(response.get_data(as_text=True)).forms:
                if form.method != "post":
                    continue
                endpoint = endpoint_of(app, form.action, url)
                if endpoint and endpoint not in _SOURCES:
                    _SOURCES[endpoint] = (route.endpoint, index, role)


def source_of(app: Flask, client, auth, ids, endpoint: str):
    """(page route, variant, role) of the page holding ``endpoint``'s form."""
    if not _SOURCES:
        _crawl(app, client, auth, ids)
    if endpoint not in _SOURCES:
        return None
    page_endpoint, index, role = _SOURCES[endpoint]
    route = next(r for r in crawl.routes(app) if r.endpoint == page_endpoint)
    return route, crawl.page_variants(route)[index], role


def current_form(app: Flask, client, auth, ids, endpoint: str):
    """(page url, role, form) as the page renders it now, or None if it is gone."""
    source = source_of(app, client, auth, ids, endpoint)
    if source is None:
        return None
    route, variant, role = source
    crawl.sign_in(auth, ids, role)
    url = crawl.url_for_route(app, route, ids, variant)
    response = client.get(url)
    if response.status_code != 200:
        return None
    for form in crawl.parse_page(response.get_data(as_text=True)).forms:
        if form.method == "post" and endpoint_of(app, form.action, url) == endpoint:
            return url, role, form
    return None


#: Values a person would type, for fields the page leaves empty.
NEW_PASSWORD = "another long passphrase 42"


def filled(form: crawl.PageForm, n: int) -> dict[str, str]:
    """The form's defaults, with plausible values in its empty fields."""
    data = form.defaults()
    for fld in form.fields:
        if not fld.name or fld.name == "csrf_token" or data.get(fld.name):
            continue
        if fld.type in ("checkbox", "radio", "submit", "file"):
            continue
        name = fld.name
        if name == "current_password":
            value = f.PASSWORD
        elif fld.type == "password" or "password" in name:
            value = NEW_PASSWORD
        elif fld.type == "email" or "email" in name:
            value = f"fuzz{n}@example.com"
        elif fld.type == "date" or name.endswith("_date"):
            value = "2099-03-01"
        elif fld.inputmode == "decimal":
            value = "1.00"
        elif fld.inputmode == "numeric" or fld.type == "number":
            value = "1"
        elif fld.tag == "select":
            value = next((o for o in fld.options if o), "")
        elif fld.type == "hidden":
            continue
        else:
            value = f"Fuzz value {n}"
        data[name] = value
    return data


def field_kinds(form: crawl.PageForm) -> dict[str, str]:
    """name → 'amount', 'percent', 'text', 'flag' (checkbox) or 'other'."""
    out = {}
    for fld in form.fields:
        if fld.name in out or not fld.name or fld.name == "csrf_token":
            continue
        if fld.type == "file":
            continue
        if fld.type in ("checkbox", "radio"):
            out[fld.name] = "flag"
        elif fld.inputmode == "decimal" and fld.name.endswith("_pct"):
            out[fld.name] = "percent"
        elif fld.inputmode == "decimal":
            out[fld.name] = "amount"
        elif fld.tag == "textarea" or fld.type in (
            "text",
            "email",
            "password",
            "search",
        ):
            out[fld.name] = "text"
        else:
            out[fld.name] = "other"
    return out
