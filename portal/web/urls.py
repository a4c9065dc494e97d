"""Public URLs for mails and links: always from PUBLIC_BASE_URL, never the Host header."""

from __future__ import annotations

from typing import Any

from flask import current_app


def public_url(endpoint: str, **values: Any) -> str:
    """The absolute public URL of ``endpoint`` (works outside a request too)."""
    adapter = current_app.url_map.bind("localhost", script_name="/")
    path = adapter.build(endpoint, values)
    return current_app.config["PUBLIC_BASE_URL"] + path


def has_endpoint(name: str) -> bool:
    """Whether the app has a view called ``name``."""
    return name in current_app.view_functions
