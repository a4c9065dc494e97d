"""The attack suite's figures: cases per group, as docs/security.md shows them.

``python -m tests.security.counts`` collects tests/security (pytest
``--collect-only``), counts the cases of each group and prints the table;
``--write`` puts it into docs/security.md between the marker comments. The
suite's own run writes ``test-artifacts/security-counts.json`` (cases tried,
passed, failed, skipped per group, and the number of hostile requests made),
and ``test_counts.py`` checks the table in the doc against the collection.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(ROOT, "docs", "security.md")
ARTIFACT = os.path.join(ROOT, "test-artifacts", "security-counts.json")
START, END = "<!-- security-counts:start -->", "<!-- security-counts:end -->"

#: Groups in the order the doc lists them.
GROUPS = [
    "Magic links",
    "Back office",
    "Inputs",
    "Uploads",
    "Exports",
    "Headers, cookies and keys",
    "Concurrency",
    "Faults",
    "Static and dependency checks",
]
BY_FILE = {
    "test_links.py": "Magic links",
    "test_backoffice.py": "Back office",
    "test_roles.py": "Back office",
    "test_inputs.py": "Inputs",
    "test_uploads.py": "Uploads",
    "test_exports.py": "Exports",
    "test_headers.py": "Headers, cookies and keys",
    "test_concurrency.py": "Concurrency",
    "test_faults.py": "Faults",
    "test_static.py": "Static and dependency checks",
    "test_counts.py": "Static and dependency checks",
    "test_dependencies.py": "Faults",
    "test_robustness.py": "Inputs",
}
#: tests/security/test_platform.py holds several groups.
PLATFORM = {
    "test_refuses_to_start_with_default_secret_key": "Headers, cookies and keys",
    "test_starts_with_a_real_key_and_debug_default": "Headers, cookies and keys",
    "test_secure_cookie_flags_outside_local_http": "Headers, cookies and keys",
    "test_security_headers_on_every_response": "Headers, cookies and keys",
    "test_old_keys_still_verify_links_after_rotation": "Headers, cookies and keys",
    "test_token_of_another_purpose_is_refused": "Magic links",
    "test_hanging_mail_server_times_out_and_keeps_the_message": "Faults",
    "test_exception_before_commit_writes_nothing": "Faults",
    "test_database_restart_between_requests": "Faults",
}


def group_of(nodeid: str) -> str | None:
    """The group of a test id under tests/security (None for anything else)."""
    path, _, name = nodeid.partition("::")
    if "tests/security/" not in path.replace("\\", "/"):
        return None
    filename = path.rsplit("/", 1)[-1]
    if filename == "test_platform.py":
        return PLATFORM.get(name.split("[", 1)[0], "Headers, cookies and keys")
    return BY_FILE.get(filename, "Other")


def collect() -> Counter:
    """Cases per group, from a fresh ``pytest --collect-only`` of tests/security."""
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/security"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    if not ids:
        raise RuntimeError(f"collection failed:\n{out.stdout}\n{out.stderr}")
    return Counter(g for g in map(group_of, ids) if g)


ENGINE_ARTIFACTS = {
    "SQLite": os.path.join(ROOT, "test-artifacts", "security-counts-sqlite.json"),
    "PostgreSQL": os.path.join(
        ROOT, "test-artifacts", "security-counts-postgresql.json"
    ),
}


def _passed(engine: str) -> dict[str, int] | None:
    """Cases passed per group in the last full run on ``engine`` (CI keeps them)."""
    try:
        with open(ENGINE_ARTIFACTS[engine], encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return {group: g["passed"] for group, g in data.get("groups", {}).items()}


def table(counts: Counter) -> str:
    """The markdown table: cases per group, and how many passed on each engine."""
    runs = {engine: _passed(engine) for engine in ENGINE_ARTIFACTS}
    head = "| group | cases | " + " | ".join(f"passed on {e}" for e in runs) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(runs)]

    def cell(run: dict[str, int] | None, group: str | None) -> str:
        if run is None:
            return "—"
        if group is None:
            return str(sum(run.get(g, 0) for g in GROUPS))
        return str(run.get(group, 0))

    for group in GROUPS:
        passed = " | ".join(cell(run, group) for run in runs.values())
        lines.append(f"| {group} | {counts.get(group, 0)} | {passed} |")
    total = sum(counts.get(g, 0) for g in GROUPS)
    passed = " | ".join(f"**{cell(run, None)}**" for run in runs.values())
    lines.append(f"| **total** | **{total}** | {passed} |")
    return "\n".join(lines)


def doc_table() -> str:
    """The table currently between the markers of docs/security.md."""
    with open(DOC, encoding="utf-8") as fh:
        text = fh.read()
    match = re.search(re.escape(START) + r"(.*?)" + re.escape(END), text, re.S)
    if not match:
        raise RuntimeError("docs/security.md has no counts markers")
    return match.group(1).strip()


def doc_cases() -> dict[str, int]:
    """group → cases, as the table in docs/security.md says."""
    out = {}
    for line in doc_table().splitlines()[2:]:
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        out[cells[0]] = int(cells[1])
    return out


def write_doc(counts: Counter) -> None:
    """Replace the table between the markers of docs/security.md."""
    with open(DOC, encoding="utf-8") as fh:
        text = fh.read()
    new = re.sub(
        re.escape(START) + r".*?" + re.escape(END),
        lambda _: f"{START}\n{table(counts)}\n{END}",
        text,
        flags=re.S,
    )
    with open(DOC, "w", encoding="utf-8") as fh:
        fh.write(new)


def write_artifact(results: dict[str, Counter], attempts: Counter) -> None:
    """test-artifacts/security-counts.json: outcomes per group of this run."""
    os.makedirs(os.path.dirname(ARTIFACT), exist_ok=True)
    engine = os.environ.get("TEST_DATABASE_URL", "") or "sqlite"
    groups = {
        group: {
            "cases": sum(results[group].values()),
            "passed": results[group]["passed"],
            "failed": results[group]["failed"],
            "skipped": results[group]["skipped"],
            "hostile_requests": attempts.get(group, 0),
        }
        for group in GROUPS
        if group in results
    }
    data = {
        "engine": "postgresql" if engine.startswith("postgres") else "sqlite",
        "groups": groups,
        "total": {
            key: sum(g[key] for g in groups.values())
            for key in ("cases", "passed", "failed", "skipped", "hostile_requests")
        },
    }
    with open(ARTIFACT, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    collected = collect()
    if "--write" in sys.argv:
        write_doc(collected)
    print(table(collected))
