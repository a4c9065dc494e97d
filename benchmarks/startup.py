"""Start-up cost: ``import portal`` and ``create_app()`` in fresh interpreters.

    python benchmarks/startup.py [--runs 7]

Each figure is the median of ``--runs`` fresh interpreters, wall time and CPU
(user + sys of the child) measured inside the child around the one statement,
so the interpreter's own start is not counted. The bytecode is compiled first
(``PYTHONDONTWRITEBYTECODE`` would otherwise make every run compile ``portal``).
The last lines are the heaviest top-level packages by ``-X importtime`` (the
sum of their modules' own times in one run), and the heavy libraries that must
not load at start-up (tests/test_startup.py checks the same list).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Loaded where they are used, never by ``import portal`` or ``create_app``.
DEFERRED = (
    "fpdf",
    "fontTools",
    "PIL",
    "alembic",
    "flask_migrate",
    "mako",
    "pygments",
    "openpyxl",
)

CONFIG = "{'TESTING': True, 'SQLALCHEMY_DATABASE_URI': 'sqlite://'}"

CHILD = """
import json, resource, sys, time
t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
{stmt}
t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(json.dumps({{"wall": t1 - t0, "cpu": cpu, "modules": sorted(sys.modules)}}))
"""

CASES = {
    "import portal": "import portal",
    "import portal + create_app()": (
        f"from portal import create_app\ncreate_app({CONFIG})"
    ),
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("SECRET_KEY", "startup-benchmark-secret-key")
    return env


def run_once(stmt: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(stmt=stmt)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def heaviest(stmt: str, top: int = 8) -> list[tuple[str, float]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", stmt],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    own: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if m:
            own[m.group(2).split(".")[0]] += int(m.group(1))
    return [(name, us / 1000) for name, us in own.most_common(top)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    compileall.compile_dir(ROOT / "portal", quiet=1)
    run_once("import portal")  # warm the page cache and the bytecode
    for label, stmt in CASES.items():
        runs = [run_once(stmt) for _ in range(args.runs)]
        wall = statistics.median(r["wall"] for r in runs) * 1000
        cpu = statistics.median(r["cpu"] for r in runs) * 1000
        loaded = [m for m in DEFERRED if m in runs[-1]["modules"]]
        print(
            f"{label:30} wall {wall:6.0f} ms  cpu {cpu:6.0f} ms  "
            f"(median of {args.runs}; heavy loaded: {', '.join(loaded) or 'none'})"
        )
    stmt = CASES["import portal + create_app()"]
    print("heaviest packages (own import time, one run, create_app):")
    for name, ms in heaviest(stmt):
        print(f"  {name:20} {ms:6.0f} ms")
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
