"""The bare reference app for ``load.py``: ``gunicorn benchmarks.bare_wsgi:app``.

One route returning "ok", served by the same gunicorn (same folder, so the same
``gunicorn.conf.py``, workers and threads) as the portal, so the ratio of a page's
throughput to this one's compares across machines and loads.
"""

from flask import Flask

app = Flask(__name__)


@app.route("/__bench/bare")
def bare() -> str:
    return "ok"
