"""Accessibility check in the page: axe-core's rules (shipped by
axe-playwright-python, nothing downloaded at run time) on every page a journey
visits. Serious and critical violations fail the test."""

from __future__ import annotations

from dataclasses import dataclass, field

from axe_playwright_python.sync_playwright import Axe

#: WCAG 2.0/2.1 A and AA plus axe's best practices.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
BLOCKING = {"serious", "critical"}
_AXE = Axe()


@dataclass
class Violation:
    """One failed rule on one page."""

    page: str
    url: str
    rule: str
    impact: str
    help: str
    targets: list[str]
    html: str

    def __str__(self) -> str:
        return (
            f"[{self.impact}] {self.rule} on {self.page} ({self.url}): {self.help}\n"
            f"    at {', '.join(self.targets)}\n    {self.html[:300]}"
        )


@dataclass
class A11y:
    """Collects the blocking violations of every page checked."""

    violations: list[Violation] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)

    def check(self, page, name: str) -> list[Violation]:
        """Run axe on the page as it is now; remember serious/critical findings."""
        page.wait_for_load_state("load")
        results = _AXE.run(
            page,
            options={
                "runOnly": {"type": "tag", "values": TAGS},
                "resultTypes": ["violations"],
            },
        )
        found = []
        for rule in results.response["violations"]:
            if rule.get("impact") not in BLOCKING:
                continue
            nodes = rule.get("nodes", [])
            found.append(
                Violation(
                    page=name,
                    url=page.url,
                    rule=rule["id"],
                    impact=rule["impact"],
                    help=rule["help"],
                    targets=[" ".join(map(str, n["target"])) for n in nodes[:6]],
                    html=nodes[0]["html"] if nodes else "",
                )
            )
        self.pages.append(name)
        self.violations.extend(found)
        return found

    def report(self) -> str:
        """Every blocking violation found, one per paragraph."""
        return "\n".join(str(v) for v in self.violations)

    def assert_clean(self) -> None:
        """Fail with the whole report when any page had a blocking violation."""
        assert not self.violations, (
            f"{len(self.violations)} serious/critical accessibility violation(s) "
            f"on {len({v.page for v in self.violations})} of {len(self.pages)} "
            f"pages:\n{self.report()}"
        )
