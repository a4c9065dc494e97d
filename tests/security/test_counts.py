"""The figures in docs/security.md are the suite's own count of its cases."""

from __future__ import annotations

from . import counts


def test_doc_table_matches_the_collected_cases() -> None:
    """Regenerate with ``python -m tests.security.counts --write``."""
    collected = counts.collect()
    expected = {group: collected.get(group, 0) for group in counts.GROUPS}
    expected["total"] = sum(expected.values())
    assert counts.doc_cases() == expected


def test_every_case_belongs_to_a_group() -> None:
    collected = counts.collect()
    assert set(collected) <= set(counts.GROUPS), set(collected) - set(counts.GROUPS)
    assert all(collected[group] > 0 for group in counts.GROUPS)
