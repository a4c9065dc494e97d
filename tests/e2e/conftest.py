"""Browser tests: Debian's Chromium driven by Playwright against a real server.

Without /usr/bin/chromium the tests skip with the reason, except under CI=true,
where a missing browser is a failure. Screenshots of every step are saved under
test-artifacts/e2e/ (and Playwright's own on failure).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import IN_CI

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(config, items) -> None:
    if os.path.exists(CHROMIUM):
        return
    if IN_CI:
        raise pytest.UsageError(
            f"CI=true but {CHROMIUM} is missing (apt-get install chromium)"
        )
    skip = pytest.mark.skip(reason=f"needs Debian's chromium at {CHROMIUM}")
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: A ceiling, not a wait: a server that has not answered by then is broken.
SERVER_START_LIMIT = 180.0


def _wait_until_it_answers(base: str, proc: subprocess.Popen, log: Path) -> None:
    """Poll until the server answers (its own signal), or its process exits.

    How long a start takes is the machine's business (a busy 2-core machine can
    take many seconds to import the app), so there is no fixed number of tries.
    """
    deadline = time.monotonic() + SERVER_START_LIMIT
    while True:
        try:
            urllib.request.urlopen(base + "/admin/login", timeout=5)  # noqa: S310
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text()) from None
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server did not answer in {SERVER_START_LIMIT:.0f} s:\n"
                    + log.read_text()
                ) from None
            time.sleep(0.05)


@pytest.fixture(scope="session")
def live_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The app served by a separate process on 127.0.0.1; yields its base URL.

    The process inherits ``PB_TEST_CLOCK_OFFSET`` (tests/clock.py) and so runs
    on this run's pinned clock.
    """
    port = _free_port()
    instance = tmp_path_factory.mktemp("e2e-instance")
    root = Path(__file__).resolve().parents[2]
    log = open(instance / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.e2e.server",
            database_url,
            str(port),
            str(instance),
        ],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_it_answers(base, proc, instance / "server.log")
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture(scope="session")
def base_url(live_server: str) -> str:
    return live_server


@pytest.fixture
def app_config(live_server: str) -> dict:
    """The tests' own app signs links and builds URLs as the served one does."""
    from .server import SECRET_KEY

    return {"SECRET_KEY": SECRET_KEY, "PUBLIC_BASE_URL": live_server}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    """A desktop-sized window (screenshots are 1280 wide)."""
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}}


class Shots:
    """Numbered screenshots of each step of a journey (of any of its pages)."""

    def __init__(self, page, name: str) -> None:
        self.page = page
        self.dir = ARTIFACTS / name
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.png"):
            old.unlink()
        self.n = 0

    def __call__(self, step: str, page=None) -> Path:
        self.n += 1
        path = self.dir / f"{self.n:02d}-{step}.png"
        (page or self.page).screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shots(page, request) -> Shots:
    return Shots(page, request.node.name)
