"""Static and dependency checks (issue 7): bandit finds nothing medium or high,
every security suppression says why, and the web stack is at or above the
first release without a known advisory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: First safe release and the advisories it fixes (see docs/security.md).
MINIMUM_SAFE = {
    "flask": ("3.1.3", "CVE-2025-47278, CVE-2026-27205"),
    "werkzeug": ("3.1.6", "CVE-2025-66221, CVE-2026-21860, CVE-2026-27199"),
    "jinja2": ("3.1.6", "CVE-2024-56201, CVE-2024-56326, CVE-2025-27516"),
}


def _requirements() -> dict[str, Requirement]:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        data = tomllib.load(fh)
    reqs = (Requirement(r) for r in data["project"]["dependencies"])
    return {r.name.lower(): r for r in reqs}


@pytest.mark.parametrize("name", list(MINIMUM_SAFE))
def test_minimum_safe_version_is_pinned_and_installed(name: str) -> None:
    minimum = Version(MINIMUM_SAFE[name][0])
    requirement = _requirements()[name]
    lower = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    assert lower and max(lower) >= minimum, f"pin {name}>={minimum}"
    # Nothing older than the minimum can be installed under the pin.
    below = Version(f"{minimum.major}.{minimum.minor}.{max(minimum.micro - 1, 0)}")
    assert below == minimum or not requirement.specifier.contains(below)
    assert Version(version(name)) >= minimum


def test_bandit_finds_nothing_medium_or_high() -> None:
    """The same scan as .ci/run (``bandit -ll``): no finding left."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bandit",
            "-q",
            "-ll",
            "-c",
            "pyproject.toml",
            "-r",
            "portal",
            "-f",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(out.stdout)
    findings = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}"
        for r in report["results"]
    ]
    assert findings == []
    assert report["metrics"]["_totals"]["loc"] > 5000  # it really scanned portal/


def _python_files() -> list[str]:
    out = []
    for folder, _, files in os.walk(os.path.join(ROOT, "portal")):
        out += [os.path.join(folder, f) for f in files if f.endswith(".py")]
    return sorted(out)


def test_every_security_suppression_says_why() -> None:
    """``# nosec Bxxx`` needs a comment line just above naming Bxxx and the
    reason; ``# noqa: Sxxx`` (ruff's bandit rules) a `` - reason`` after it."""
    problems = []
    for path in _python_files():
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        for n, line in enumerate(lines):
            where = f"{os.path.relpath(path, ROOT)}:{n + 1}"
            nosec = re.search(r"#\s*nosec\b(.*)", line)
            if nosec:
                ids = re.findall(r"B[0-9]{3}", nosec.group(1))
                above = " ".join(lines[max(0, n - 3) : n])
                if not ids:
                    problems.append(f"{where}: nosec without a test id")
                elif not all(i in above for i in ids):
                    problems.append(f"{where}: no comment above explains {ids}")
            noqa = re.search(r"#\s*noqa:\s*([A-Z0-9, ]+)(.*)", line)
            if noqa and re.search(r"\bS[0-9]{3}\b", noqa.group(1)):
                if not re.match(r"\s*-\s*\w", noqa.group(2)):
                    problems.append(
                        f"{where}: noqa {noqa.group(1).strip()} without a reason"
                    )
    assert problems == []


def test_ci_runs_bandit_and_the_security_suite_on_both_engines() -> None:
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as fh:
        script = fh.read()
    assert re.search(r"bandit .*-ll", script)
    assert 'TEST_DATABASE_URL="$PG_BASE" .venv/bin/pytest' in script
    assert "security-counts" in script or "tests.security.counts" in script


def test_no_debug_mode_or_unescaped_output_in_the_code() -> None:
    """No ``debug=True``, ``|safe`` or ``autoescape false`` anywhere; Markup only
    where bandit's B704 was reviewed (the badge filter)."""
    problems = []
    for path in _python_files():
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        if re.search(r"debug\s*=\s*True", text):
            problems.append(f"{path}: debug=True")
        if "render_template_string(" in text:
            problems.append(f"{path}: render_template_string")
        if "Markup(" in text and not path.endswith("templating.py"):
            problems.append(f"{path}: Markup(")
    for folder, _, files in os.walk(os.path.join(ROOT, "templates")):
        for name in files:
            with open(os.path.join(folder, name), encoding="utf-8") as fh:
                text = fh.read()
            if re.search(r"\|\s*safe\b|autoescape\s+false", text):
                problems.append(f"templates/{name}: |safe or autoescape false")
    assert problems == []
