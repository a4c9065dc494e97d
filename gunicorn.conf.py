"""gunicorn settings read from the project folder (README, "Production").

Two things gunicorn's defaults get wrong for this app:

* **The Server header.** gunicorn writes ``Server: gunicorn`` on every answer
  and has no setting to drop it; telling the world the server software only
  helps an attacker pick exploits (issue 17). This drops the header for every
  worker.

* **The garbage collector** (issue 16 item 2). Loading the app leaves a few
  hundred thousand long-lived objects (modules, SQLAlchemy mappers and
  compiled-statement caches, Jinja templates, Babel data). With CPython's
  default thresholds (700, 10, 10) a page allocating ~100,000 objects triggers
  ~140 young collections, and every full collection walks all of those
  start-up objects again, for nothing: they never become garbage. So:

  - the app is loaded once in the master (``preload_app``) with the collector
    off, and frozen (``gc.freeze()``: moved to a permanent generation that no
    collection visits) in ``when_ready``, just before the workers are forked.
    Collections in a worker then never write to those objects' headers either,
    so their memory pages stay shared between the workers (copy-on-write);
  - each worker freezes again once it has booted (``post_worker_init``: what a
    worker built on its own, or the whole app if preloading is turned off);
  - the young generation is collected every 50,000 net allocations instead of
    700 (``gc.set_threshold(50_000, 50, 100)``): a page's short-lived cycles are
    still collected, a few times a page instead of a hundred, and a full
    collection happens about every 250 million allocations instead of 70,000.
    Garbage waiting for the next collection is bounded by the threshold (a
    few MB per worker). Measured (docs/scaling.md, "Collector in the
    workers"): 1-4 ms (up to 11 %) less worker CPU per contact page view,
    mostly from the freeze; no threshold measured better than another on the
    loaded machine, so these are the issue's suggestion.

  Preloading means the master holds the app's code: after a deploy restart
  gunicorn (or send USR2 to start a new master), since HUP only re-forks
  workers from the old code.

  ``PORTAL_GC_THRESHOLDS`` overrides the thresholds (three integers,
  ``"700,10,10"`` is CPython's default); ``PORTAL_GC_TUNING=off`` leaves the
  collector as CPython sets it (no freeze, default thresholds), to measure.
"""

from __future__ import annotations

import gc
import os

from gunicorn.http import wsgi as _wsgi

_default_headers = _wsgi.Response.default_headers


def _without_server(self):
    return [h for h in _default_headers(self) if not h.lower().startswith("server:")]


_wsgi.Response.default_headers = _without_server


# ---------------------------------------------------------------- collector

DEFAULT_GC_THRESHOLDS = (50_000, 50, 100)


def gc_thresholds(environ=os.environ) -> tuple[int, int, int] | None:
    """The workers' thresholds; None when the tuning is turned off."""
    if environ.get("PORTAL_GC_TUNING", "on").strip().lower() in {
        "off",
        "0",
        "false",
        "no",
    }:
        return None
    raw = environ.get("PORTAL_GC_THRESHOLDS", "").strip()
    if not raw:
        return DEFAULT_GC_THRESHOLDS
    first, second, third = (int(part) for part in raw.split(","))
    return first, second, third


_THRESHOLDS = gc_thresholds()

#: Load the app in the master, before forking (the freeze below shares it).
preload_app = True

if _THRESHOLDS is not None:
    # No collection while the app is imported and built: it would only free a
    # few cycles and leave holes in pages the workers will share.
    gc.disable()


def when_ready(server) -> None:
    """Master, app loaded, workers not forked yet: freeze what start-up made."""
    if _THRESHOLDS is None:
        return
    gc.collect()  # what booting the worker left over (not the frozen objects)
    gc.freeze()
    gc.enable()  # the master keeps collecting what it makes from now on
    server.log.info(
        "gc: %d start-up objects frozen (app preloaded: %s)",
        gc.get_freeze_count(),
        server.app.callable is not None,
    )


def post_fork(server, worker) -> None:
    """In each new worker: its own database connections, the tuned collector."""
    app = server.app.callable if server.cfg.preload_app else None
    # Only the portal app has engines (benchmarks/bare_wsgi.py, served with
    # these settings for comparison, has none).
    if app is not None and "sqlalchemy" in getattr(app, "extensions", {}):
        # The master loaded the app: never share a pooled connection it may
        # have opened (SQLAlchemy's advice for forked processes).
        from portal.extensions import db

        with app.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)
    if _THRESHOLDS is not None:
        gc.set_threshold(*_THRESHOLDS)
        gc.enable()


def post_worker_init(worker) -> None:
    """The worker has loaded the app (or taken the master's): freeze it too."""
    if _THRESHOLDS is None:
        return
    gc.collect()  # what booting the worker left over (not the frozen objects)
    gc.freeze()
