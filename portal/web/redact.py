"""Keep magic-link tokens out of logs (SPEC §6).

The token travels in the URL path (``/portal/link/<token>``), so any access
log would record it. This filter rewrites such paths to
``/portal/link/[redacted]`` in every record of the loggers that print request
lines or errors (Werkzeug's dev server, gunicorn, the app's own logger).
"""

from __future__ import annotations

import logging
import re

from flask.sansio.app import App

TOKEN_PATH = re.compile(r"(/portal/link/)[^\s/?#\"']+")
REDACTED = r"\1[redacted]"
LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error")


def redact(text: str) -> str:
    """``text`` with every link token replaced."""
    return TOKEN_PATH.sub(REDACTED, text)


class RedactTokens(logging.Filter):
    """A logging filter that removes link tokens from the message and its args."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact(a) if isinstance(a, str) else a for a in record.args
            )
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v
                for k, v in record.args.items()
            }
        return True


_FILTER = RedactTokens()


def install(app: App) -> None:
    """Attach the filter (once) to the request and error loggers."""
    for logger in (*(logging.getLogger(n) for n in LOGGERS), app.logger):
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
