"""gunicorn settings read from the project folder (README, "Production").

gunicorn writes ``Server: gunicorn`` on every answer and has no setting to
drop it; telling the world the server software and only helps an attacker
pick exploits (issue 17). This drops the header for every worker.
"""

from gunicorn.http import wsgi as _wsgi

_default_headers = _wsgi.Response.default_headers


def _without_server(self):
    return [h for h in _default_headers(self) if not h.lower().startswith("server:")]


_wsgi.Response.default_headers = _without_server
