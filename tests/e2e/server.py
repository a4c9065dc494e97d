"""Serve the app for the browser tests: a real server process on 127.0.0.1.

Usage: python -m tests.e2e.server <database-url> <port> <instance-dir>

The server runs on the tests' clock (tests/clock.py; the offset comes from the
parent's ``PB_TEST_CLOCK_OFFSET``), so the data the tests build, the links they
sign and the pages the browser sees agree on the date and the second.
"""

from __future__ import annotations

import sys

from tests import clock

#: Shared with the tests' own app, so links they sign open on the server.
SECRET_KEY = "e2e-secret-key-not-for-production"


def main() -> None:
    clock.start()
    from werkzeug.serving import run_simple

    from portal import create_app

    url, port, instance = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    app = create_app(
        {
            "SECRET_KEY": SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": url,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "UPLOAD_FOLDER": f"{instance}/uploads",
            "RATELIMIT_ENABLED": False,
            "MAIL_TRANSPORT": "console",
        }
    )
    run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
