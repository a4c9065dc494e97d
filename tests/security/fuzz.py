"""Hostile inputs and the checks every answer to them must pass.

The documented normalisation of stored text (docs/security.md): NUL and the
other C0 control characters and DEL are dropped; single-line fields also turn
CR, LF and tab into spaces (short labels, such as API token names, also collapse
runs of white space); surrounding white space is trimmed. Nothing else
changes: HTML, template syntax, formulas, bidi and other Unicode are stored as
typed and escaped where they are shown (exports neutralise formulas).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa

from portal.extensions import db
from portal.validation import clean_text

_marks = itertools.count(1)


def marker() -> str:
    """A unique ASCII tag to find a stored value again."""
    return f"ZQ{next(_marks)}X"


#: Text payloads (a function of the marker). Each case is one hostile family.
TEXT_PAYLOADS: dict[str, Callable[[str], str]] = {
    "markup": lambda m: (
        f'=1+2 <script>alert("{m}")</script><img src=x onerror=alert(1)>'
        f"{{{{7*7}}}}{m}{{% print 7*7 %}}"
    ),
    "controls": lambda m: (
        f"a\x00b\x01c\x1b[31md\x7fe \u202egnp.exe\u202c\u200b\t"
        f"x\r\nBcc: victim@evil.example\r\nSubject: pwned {m}"
    ),
    "long": lambda m: "L" * 20_000 + m,
    "unicode": lambda m: f"Zoë Ångström 日本語 😀 ' OR '1'='1' -- \\ % _ {m}",
}
#: Values aimed at numbers, ids, versions and choices.
NUMBER_PAYLOADS = {
    "nan": "NaN",
    "huge-exponent": "1e309",
    "int-overflow": "99999999999999999999999",
    "negative": "-1",
    "arabic-digits": "١٢٣",
}
#: Every amount form of SPEC §5, with whether the strict parser accepts it.
AMOUNT_FORMS: dict[str, bool] = {
    "1234.5": True,
    "1,234.50": True,
    "$1,234.50": True,
    "0": True,
    "12a": False,
    "abc": False,
    "1.005": False,
    "NaN": False,
    "sNaN": False,
    "Infinity": False,
    "-Infinity": False,
    "1e3": False,
    "1E309": False,
    "١٢٣": False,
    "１２３": False,
    "1000000000000.00": False,
    "999999999999999999999999": False,
    "(5.00)": False,
    "0x10": False,
    "1_000": False,
    "--1": False,
    "1.2.3": False,
    "$": False,
    "1,23,4.00": False,
}
SPEC_REJECTS_NEGATIVE = "-5.00"
#: Percentages (retainage, markup): 0-100 with up to 4 decimals.
PERCENT_FORMS: dict[str, bool] = {
    "10": True,
    "12.3456": True,
    "7.5 %": True,
    "100": True,
    "100.0001": False,
    "-1": False,
    "12.34567": False,
    "NaN": False,
    "Infinity": False,
    "1e1": False,
    "١٠": False,
    "$10": False,
    "10,5": False,
    "abc": False,
}


def normalisations(value: str) -> set[str]:
    """What the value may be stored as, per the documented normalisation."""
    single = clean_text(value, multiline=False)
    return {clean_text(value, multiline=True), single, " ".join(single.split())}


# ---------------------------------------------------------------- the database


def _text_columns(table: sa.Table) -> list[sa.Column]:
    out = []
    for column in table.columns:
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            python_type = None
        if python_type is str or isinstance(column.type, sa.JSON):
            out.append(column)
    return out


@functools.cache
def _search() -> tuple[sa.CompoundSelect, dict[str, tuple[sa.Table, list[sa.Column]]]]:
    """One UNION ALL over every text column of every table (built once)."""
    pattern = sa.bindparam("pattern")
    selects, tables = [], {}
    for table in db.metadata.sorted_tables:
        columns = _text_columns(table)
        keys = list(table.primary_key.columns)
        if not columns or len(keys) != 1:
            continue
        tables[table.name] = (table, columns)
        conditions = [
            sa.cast(c, sa.Text).like(pattern)
            if isinstance(c.type, sa.JSON)
            else c.like(pattern)
            for c in columns
        ]
        selects.append(
            sa.select(
                sa.literal(table.name).label("t"),
                sa.cast(keys[0], sa.Integer).label("k"),
            ).where(sa.or_(*conditions))
        )
    return sa.union_all(*selects), tables


def stored_with(marker_text: str) -> list[tuple[str, str, Any]]:
    """(table, column, value) of every stored value containing the marker."""
    statement, tables = _search()
    hits = []
    for name, key in db.session.execute(statement, {"pattern": f"%{marker_text}%"}):
        table, columns = tables[name]
        pk = next(iter(table.primary_key.columns))
        row = db.session.execute(sa.select(*columns).where(pk == key)).one()
        for column, value in zip(columns, row, strict=True):
            for text in _strings(value):
                if marker_text in text:
                    hits.append((table.name, column.name, text))
    return hits


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


@functools.cache
def _fingerprint() -> sa.Select:
    parts = []
    for table in db.metadata.sorted_tables:
        parts.append(
            sa.select(sa.func.count())
            .select_from(table)
            .scalar_subquery()
            .label(f"n_{table.name}")
        )
        for name in ("version", "session_version", "token_version"):
            if name in table.columns:
                parts.append(
                    sa.select(sa.func.coalesce(sa.func.sum(table.columns[name]), 0))
                    .scalar_subquery()
                    .label(f"v_{table.name}_{name}")
                )
    return sa.select(*parts)


def fingerprint() -> tuple:
    """Row counts of every table and the sum of every version counter (one query)."""
    row = db.session.execute(_fingerprint()).one()
    return tuple(zip(row._fields, row, strict=True))


def changed(before: tuple, after: tuple, ignore: Iterable[str] = ()) -> list[str]:
    """The fingerprint entries that differ (minus ``ignore`` prefixes)."""
    ignored = tuple(ignore)
    return [
        f"{name}: {a} → {b}"
        for (name, a), (_, b) in zip(before, after, strict=True)
        if a != b and not name.startswith(ignored)
    ]


# ---------------------------------------------------------------- checks


def check_round_trip(hits: list[tuple[str, str, Any]], value: str) -> list[str]:
    """Problems with how ``value`` was stored (empty list: it round-trips)."""
    problems = []
    accepted = normalisations(value)
    for table, column, text in hits:
        if "\x00" in text:
            problems.append(f"{table}.{column} stored a NUL")
        if not any(n and n in text for n in accepted):
            problems.append(
                f"{table}.{column} stored {text[:120]!r}, not the input after the "
                "documented normalisation"
            )
    return problems


_RAW_MARKUP = re.compile(r"<script>alert\(|<img src=x onerror")


def check_escaped(html: str, marker_text: str) -> list[str]:
    """Problems with how a page shows a stored markup payload."""
    problems = []
    if _RAW_MARKUP.search(html):
        problems.append("raw <script>/<img onerror> from the input is in the page")
    if f"49{marker_text}" in html or f"{marker_text}49" in html:
        problems.append("template syntax from the input was evaluated")
    return problems
