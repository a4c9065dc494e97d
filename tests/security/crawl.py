"""Walking the app: its routes, signing in as each role, reading rendered forms.

``parse_page`` reads a rendered page with the standard library's HTML parser and
returns its POST forms (action, fields, defaults) and anything the
Content-Security-Policy would block (inline scripts or styles, event-handler
attributes, ``javascript:`` URLs, scripts or styles from other origins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from types import SimpleNamespace
from urllib.parse import urlsplit

from flask import Flask, url_for

from .world import url_params

ROLES = ("anonymous", "contact", "viewer", "finance", "admin")
STAFF = ("viewer", "finance", "admin")
#: Rules that are not pages of ours (files of third-party packages).
SKIP_ENDPOINTS = {"bootstrap.static"}


@dataclass
class Field:
    """One named control of a form."""

    tag: str
    type: str
    name: str
    value: str
    options: list[str] = field(default_factory=list)
    inputmode: str = ""
    checked: bool = False


@dataclass
class PageForm:
    """A form of a page: where it posts and what it carries."""

    action: str
    method: str
    enctype: str
    fields: list[Field] = field(default_factory=list)

    def defaults(self) -> dict[str, str]:
        """What a browser would post without any change (first value per name)."""
        out: dict[str, str] = {}
        radios: dict[str, str] = {}
        for fld in self.fields:
            if fld.type in ("submit", "button", "file", "reset", "image"):
                continue
            if fld.type in ("checkbox", "radio"):
                if fld.checked:
                    out.setdefault(fld.name, fld.value or "on")
                elif fld.type == "radio":
                    radios.setdefault(fld.name, fld.value)
                continue
            if fld.tag == "select":
                out.setdefault(fld.name, fld.value or next(iter(fld.options), ""))
                continue
            out.setdefault(fld.name, fld.value)
        for name, value in radios.items():
            out.setdefault(name, value)
        for fld in self.fields:  # submit buttons with a name/value (action=save)
            if fld.type == "submit" and fld.name and fld.name not in out:
                out[fld.name] = fld.value
        return out

    def names(self) -> list[str]:
        """Every field name a user could change, once each, in page order."""
        seen: list[str] = []
        for fld in self.fields:
            if fld.name and fld.name not in seen and fld.type not in ("file",):
                seen.append(fld.name)
        return seen


@dataclass
class Page:
    """What ``parse_page`` found."""

    forms: list[PageForm] = field(default_factory=list)
    csp_problems: list[str] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._form: PageForm | None = None
        self._select: Field | None = None
        self._textarea: Field | None = None
        self._script_inline = False
        self._in_style = False

    # -- CSP ---------------------------------------------------------------
    def _check_attrs(self, tag: str, attrs: dict[str, str | None]) -> None:
        problems = self.page.csp_problems
        for name, value in attrs.items():
            if name.startswith("on"):
                problems.append(f"<{tag} {name}=…> event handler attribute")
            if name == "style":
                problems.append(f"<{tag} style=…> inline style attribute")
            if (
                name in ("href", "src", "action", "formaction")
                and value
                and value.strip().lower().startswith("javascript:")
            ):
                problems.append(f"<{tag} {name}=javascript:…>")
        if tag == "script":
            src = attrs.get("src")
            if not src:
                self._script_inline = True
            elif urlsplit(src).netloc:
                problems.append(f"<script src={src}> from another origin")
        if tag == "link" and "stylesheet" in (attrs.get("rel") or ""):
            href = attrs.get("href") or ""
            if urlsplit(href).netloc:
                problems.append(f"<link stylesheet {href}> from another origin")
        if tag == "style":
            self._in_style = True
            problems.append("<style> element (inline style)")

    # -- forms ---------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs_list: list) -> None:
        attrs = {k.lower(): (v if v is not None else "") for k, v in attrs_list}
        self._check_attrs(tag, attrs)
        if tag == "form":
            self._form = PageForm(
                action=attrs.get("action", ""),
                method=(attrs.get("method") or "get").lower(),
                enctype=attrs.get("enctype", ""),
            )
            self.page.forms.append(self._form)
            return
        if self._form is None:
            return
        name = attrs.get("name", "")
        if tag == "input" and name:
            self._form.fields.append(
                Field(
                    "input",
                    (attrs.get("type") or "text").lower(),
                    name,
                    attrs.get("value", ""),
                    inputmode=attrs.get("inputmode", ""),
                    checked="checked" in attrs,
                )
            )
        elif tag == "button" and name:
            self._form.fields.append(
                Field("button", "submit", name, attrs.get("value", ""))
            )
        elif tag == "select" and name:
            self._select = Field("select", "select", name, "")
            self._form.fields.append(self._select)
        elif tag == "option" and self._select is not None:
            value = attrs.get("value", "")
            self._select.options.append(value)
            if "selected" in attrs:
                self._select.value = value
        elif tag == "textarea" and name:
            self._textarea = Field(
                "textarea", "textarea", name, "", inputmode=attrs.get("inputmode", "")
            )
            self._form.fields.append(self._textarea)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "script":
            self._script_inline = False
        elif tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea.value += data
        if self._script_inline and data.strip():
            self.page.csp_problems.append(f"inline <script>: {data.strip()[:60]}")


def parse_page(html: str) -> Page:
    """The page's forms and its CSP problems."""
    parser = _Parser()
    parser.feed(html)
    parser.close()
    for form in parser.page.forms:  # a textarea's first newline is not content
        for fld in form.fields:
            if fld.tag == "textarea" and fld.value.startswith("\n"):
                fld.value = fld.value[1:]
    return parser.page


# ------------------------------------------------------------------ routes


@dataclass(frozen=True)
class Route:
    """One rule of the URL map."""

    endpoint: str
    methods: frozenset[str]
    rule: object

    @property
    def area(self) -> str:
        """admin, exports, api, contact or other."""
        if self.endpoint.startswith("exports.api_"):
            return "api"
        return self.endpoint.split(".", 1)[0] if "." in self.endpoint else "other"


def routes(app: Flask) -> list[Route]:
    """Every rule of ours, sorted by endpoint."""
    out = [
        Route(rule.endpoint, frozenset(rule.methods - {"HEAD", "OPTIONS"}), rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in SKIP_ENDPOINTS
    ]
    return sorted(out, key=lambda r: (r.endpoint, str(r.rule)))


#: Pages shown a second time with other objects, for the forms only they show.
EXTRA_PAGES = {
    "admin.claim_view": [{"claim_id": "sent_claim_id"}],
    "admin.commitment_view": [{"commitment_id": "draft_commitment_id"}],
    "admin.client_contract_view": [{"contract_id": "draft_contract_id"}],
}


def page_variants(route: Route) -> list[dict[str, str]]:
    """The default page plus the extra objects it is shown with."""
    return [{}, *EXTRA_PAGES.get(route.endpoint, [])]


def url_for_route(
    app: Flask,
    route: Route,
    ids: SimpleNamespace,
    variant: dict[str, str] | None = None,
) -> str:
    """The route's URL with the full world's ids filled in."""
    params = url_params(ids, route.endpoint)
    for arg, attr in (variant or {}).items():
        params[arg] = getattr(ids, attr)
    values = {}
    for arg in route.rule.arguments:  # type: ignore[attr-defined]
        if arg == "filename":
            values[arg] = "app.css"
        elif arg == "token":
            values[arg] = ids.token
        else:
            values[arg] = params[arg]
    with app.test_request_context():
        return url_for(route.endpoint, **values)


def sign_in(auth, ids: SimpleNamespace, role: str) -> None:
    """Put ``role``'s session on the test client (anonymous: no session)."""
    if role == "anonymous":
        with auth.client.session_transaction() as sess:
            sess.clear()
    elif role == "contact":
        auth.login_contact(ids.contact_id)
    elif role == "other_contact":
        auth.login_contact(ids.other_contact_id)
    else:
        auth.login_user(getattr(ids, f"{role}_id"))


def role_for(endpoint: str) -> str:
    """Who normally uses an endpoint (whose pages hold its forms)."""
    if endpoint.startswith("contact."):
        return "contact"
    if endpoint.startswith("exports."):
        return "finance"
    if endpoint == "admin.login":
        return "anonymous"
    return "admin"
