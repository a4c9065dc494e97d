"""The Nu HTML checker (vnu.jar, from the ``vnu-jar`` npm package) over the
HTML of every page a journey visits: the documents exactly as the server sent
them (not the browser's DOM), checked in one run of the checker at the end.

``.ci/run`` installs the jar and sets ``VNU_JAR``; without it the check fails
under CI=true and warns otherwise (java and npm may be missing on a laptop).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..conftest import IN_CI
from .conftest import ARTIFACTS

ENV_JAR = "VNU_JAR"


def jar() -> Path | None:
    """The checker's jar, if installed (``VNU_JAR``)."""
    raw = os.environ.get(ENV_JAR, "").strip()
    return Path(raw) if raw and Path(raw).is_file() else None


@dataclass
class NuChecker:
    """Collects each visited page's HTML; :meth:`assert_clean` checks them all."""

    name: str
    pages: dict[str, str] = field(default_factory=dict)
    _last: dict[int, object] = field(default_factory=dict)

    def watch(self, page) -> None:
        """Remember the last document the page received (its raw HTML)."""

        def seen(response) -> None:
            request = response.request
            if (
                request.resource_type == "document"
                and response.frame == page.main_frame
            ):
                self._last[id(page)] = response

        page.on("response", seen)

    def check(self, page, name: str) -> None:
        """Keep the HTML of the document the page shows now."""
        page.wait_for_load_state("load")
        response = self._last.get(id(page))
        if response is None:
            return
        content_type = response.headers.get("content-type", "")
        if "text/html" in content_type:
            self.pages[name] = response.text()

    def errors(self) -> list[str]:
        """The checker's errors, one line each ("page:line: message")."""
        path = jar()
        if path is None:
            message = f"{ENV_JAR} is not set to vnu.jar: HTML not checked"
            if IN_CI:
                raise AssertionError(message + " (.ci/run installs it)")
            warnings.warn(message, stacklevel=2)
            return []
        out = ARTIFACTS / "html" / self.name
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        files = []
        for n, (name, html) in enumerate(self.pages.items(), start=1):
            file = out / f"{n:02d}-{name}.html"
            file.write_text(html)
            files.append(str(file))
        if not files:
            return []
        run = subprocess.run(
            ["java", "-jar", str(path), "--errors-only", "--format", "json", *files],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        report = json.loads(run.stderr or run.stdout or '{"messages": []}')
        return [
            f"{Path(m.get('url', '')).name}:{m.get('lastLine', '?')}: {m.get('message')}"
            f"  [{m.get('extract', '').strip()[:120]}]"
            for m in report.get("messages", [])
            if m.get("type") == "error" or m.get("subType") == "fatal"
        ]

    def assert_clean(self) -> None:
        errors = self.errors()
        assert not errors, f"{len(errors)} Nu HTML checker error(s):\n" + "\n".join(
            errors
        )
