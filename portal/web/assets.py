"""Pages that arrive small (issue 16 item 4): compression and cacheable assets.

- Responses are compressed (Flask-Compress: Brotli, else gzip) when they are
  text the browser asked to have compressed: HTML, CSS, JavaScript, JSON, SVG.
  Downloads (PDF, XLSX, ZIP: already compressed; CSV and attachments: files)
  are left alone, as are streamed responses.
- Every URL of a static file (ours and Bootstrap-Flask's local copy) carries
  its content's hash, ``?v=<hash>``; such a response may be cached for a year
  (``immutable``): a changed file gets a new URL. A URL without the current
  hash (an old page, a hand-typed address) is cached for a few minutes only.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any, cast

from flask import Flask, Response, request
from flask_compress import Compress

#: What is worth compressing; everything else (PDF, XLSX, ZIP, CSV and other
#: downloads, images) goes out as it is.
COMPRESS_MIMETYPES = [
    "text/html",
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/json",
    "image/svg+xml",
]

LONG_CACHE = "public, max-age=31536000, immutable"
SHORT_CACHE = "public, max-age=300"

compress = Compress()


def register(app: Flask) -> None:
    """Compression, hashed static URLs and their caching headers."""
    app.config.setdefault("COMPRESS_MIMETYPES", COMPRESS_MIMETYPES)
    app.config.setdefault("COMPRESS_ALGORITHM", ["br", "gzip"])
    app.config.setdefault("COMPRESS_BR_LEVEL", 5)
    app.config.setdefault("COMPRESS_LEVEL", 6)
    # File downloads stream (send_file); they are not compressed. Static files
    # are read whole (below) and compressed once per worker.
    app.config.setdefault("COMPRESS_STREAMS", False)
    app.config.setdefault("COMPRESS_CACHE_BACKEND", StaticOnlyCache)
    app.config.setdefault("COMPRESS_CACHE_KEY", _static_cache_key)
    compress.init_app(app)
    versions = StaticVersions(app)

    @app.url_defaults
    def add_static_version(endpoint: str, values: dict[str, Any]) -> None:
        if "filename" in values and "v" not in values and _is_static(endpoint):
            version = versions.get(endpoint, values["filename"])
            if version:
                values["v"] = version

    @app.after_request
    def cache_static(response: Response) -> Response:
        endpoint = request.endpoint
        if endpoint and _is_static(endpoint) and response.status_code in (200, 304):
            filename = (request.view_args or {}).get("filename", "")
            wanted = request.args.get("v")
            current = versions.get(endpoint, filename)
            fresh = wanted is not None and wanted == current
            response.headers["Cache-Control"] = LONG_CACHE if fresh else SHORT_CACHE
            if response.status_code == 200 and response.direct_passthrough:
                # Whole, so Flask-Compress compresses it (streams it would skip);
                # our files and Bootstrap's are at most a few hundred KiB.
                source = response.response
                try:
                    body = b"".join(cast("Iterable[bytes]", source))
                finally:
                    getattr(source, "close", lambda: None)()
                response.direct_passthrough = False
                response.set_data(body)
        return response


def _static_cache_key(req: Any) -> str:
    """Flask-Compress's cache key: a static file's URL, else nothing to cache."""
    endpoint = req.endpoint or ""
    return f"{STATIC_KEY}{req.full_path}" if _is_static(endpoint) else ""


STATIC_KEY = "static:"


class StaticOnlyCache:
    """Compressed static files, one entry per URL and encoding; pages (which
    differ per viewer) are never kept. The set of URLs is bounded by the files
    that exist and their versions."""

    MAX_ENTRIES = 512

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def set(self, key: str, value: bytes) -> None:
        _, _, url = key.partition(";")
        if url.startswith(STATIC_KEY) and len(self.data) < self.MAX_ENTRIES:
            self.data[key] = value


def _is_static(endpoint: str) -> bool:
    return endpoint == "static" or endpoint.endswith(".static")


class StaticVersions:
    """The content hash of each static file, read once (re-read in debug)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._cache: dict[tuple[str, str], tuple[float, str | None]] = {}

    def folder(self, endpoint: str) -> str | None:
        if endpoint == "static":
            return self.app.static_folder
        blueprint = self.app.blueprints.get(endpoint.rsplit(".", 1)[0])
        return blueprint.static_folder if blueprint is not None else None

    def get(self, endpoint: str, filename: str) -> str | None:
        """The first 12 hex digits of the file's SHA-256; None if there is none."""
        key = (endpoint, filename)
        cached = self._cache.get(key)
        if cached is not None and not self.app.debug:
            return cached[1]
        folder = self.folder(endpoint)
        path = _safe_join(folder, filename) if folder else None
        try:
            mtime = os.stat(path).st_mtime if path else -1.0
        except OSError:
            mtime = -1.0
        if cached is not None and cached[0] == mtime:
            return cached[1]
        version = None
        if path and mtime >= 0:
            with open(path, "rb") as handle:
                version = hashlib.sha256(handle.read()).hexdigest()[:12]
        self._cache[key] = (mtime, version)
        return version


def _safe_join(folder: str, filename: str) -> str | None:
    from werkzeug.security import safe_join

    return safe_join(folder, filename)
