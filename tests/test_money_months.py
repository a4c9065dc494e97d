"""Property test: random month sequences through the pure money engine (issue 13).

Two commitments bill month after month (either may skip a month); each month a
line gets work, new stored materials, an installed part of what is stored (at
most its work, docs/money.md) and sometimes a release of what is held. The
engine's carry is driven exactly as portal/billing/figures.py drives it (F and
the effective releases from the previous billing's figures), and the
invariants of SPEC §4 and §9 must hold every month.
"""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from portal.core import money

D = Decimal
ZERO = D("0.00")
SCHEDULED = D("100000.00")

amount = st.integers(min_value=0, max_value=2_000_000).map(lambda c: D(c).scaleb(-2))
pct = st.sampled_from([D("0"), D("5"), D("10"), D("7.5")])
month = st.tuples(
    st.booleans(),  # bills this month
    st.lists(
        st.tuples(amount, amount, st.floats(0, 1), st.floats(0, 1)),
        min_size=2,
        max_size=2,
    ),
    st.floats(0, 1),  # share of the available retainage released
)


def _cents(value: Decimal) -> Decimal:
    return money.to_cents(value)


@settings(max_examples=150, deadline=None)
@given(
    months=st.lists(st.tuples(month, month), min_size=1, max_size=8),
    work_pct=pct,
    materials_pct=pct,
)
def test_month_sequences_keep_the_invariants(months, work_pct, materials_pct) -> None:
    state = [
        {"d": [ZERO, ZERO], "f": [ZERO, ZERO], "released": ZERO, "line6": ZERO}
        for _ in range(2)
    ]
    history: list[list[tuple[list[money.LineInput], dict, dict]]] = [[], []]
    upstream_work = ZERO
    for month_pair in months:
        for k, (bills, lines, share) in enumerate(month_pair):
            s = state[k]
            if not bills:
                continue
            inputs = []
            for i, (work, new, inst_share, _) in enumerate(lines):
                room = SCHEDULED - s["d"][i] - s["f"][i]
                work = min(work, max(room, ZERO))
                stored = s["f"][i] + new
                installed = _cents(min(stored, work) * D(str(round(inst_share, 2))))
                inputs.append(
                    money.LineInput(
                        original_value=SCHEDULED,
                        change_orders=ZERO,
                        previous_work=s["d"][i],
                        work_this_period=work,
                        materials_stored=new,
                        materials_previous=s["f"][i],
                        materials_installed=installed,
                    )
                )
            probe = money.compute_billing(
                inputs,
                work_retainage_pct=work_pct,
                materials_retainage_pct=materials_pct,
            )
            base = probe.totals.retainage_on_work + probe.totals.retainage_on_materials
            available = money.retainage_available(base, s["released"])
            release = _cents(available * D(str(round(share, 2))))
            kwargs = {
                "work_retainage_pct": work_pct,
                "materials_retainage_pct": materials_pct,
                "retainage_released_to_date": s["released"] + release,
                "previous_certificates": s["line6"],
            }
            figs = money.compute_billing(inputs, **kwargs)
            t = figs.totals
            # Line 4 = Σ G; F never below 0; line 5 never below 0.
            assert t.total_completed_and_stored == sum(
                (ln.total_completed_and_stored for ln in figs.lines), ZERO
            )
            assert all(ln.materials_stored >= 0 for ln in figs.lines)
            # F carries: previous + new − installed (SPEC §4).
            for ln, given_line in zip(figs.lines, inputs, strict=True):
                assert ln.materials_stored == max(
                    given_line.materials_previous
                    + given_line.materials_stored
                    - given_line.materials_installed,
                    ZERO,
                )
            assert t.retainage >= 0
            assert t.retainage_released_to_date <= s["released"] + release
            stored = json.loads(json.dumps(money.figures_to_dict(figs)))
            history[k].append((inputs, kwargs, stored))
            upstream_work += sum((ln.work_this_period for ln in figs.lines), ZERO)
            s["d"] = [ln.previous_work + ln.work_this_period for ln in figs.lines]
            s["f"] = [ln.materials_stored for ln in figs.lines]
            s["released"] = t.retainage_released_to_date
            s["line6"] = t.total_earned_less_retainage
        # SPEC §9 with markup 0: upstream to date (Σ work of every month + the
        # latest F of every commitment, billing or not) ties to Σ downstream G.
        upstream_to_date = upstream_work + sum((sum(s["f"], ZERO) for s in state), ZERO)
        downstream = sum((sum(s["d"], ZERO) + sum(s["f"], ZERO) for s in state), ZERO)
        assert upstream_to_date == downstream
    for k in range(2):
        if not history[k]:
            continue
        # Line 8 summed over the months = line 6 of the last billing.
        dues = [
            money.figures_from_dict(stored).totals.current_payment_due
            for _, _, stored in history[k]
        ]
        last = money.figures_from_dict(history[k][-1][2]).totals
        assert sum(dues, ZERO) == last.total_earned_less_retainage
        # An approved billing's figures do not change when later data does:
        # recomputed from its own inputs they are what was stored.
        for inputs, kwargs, stored in history[k]:
            again = money.figures_to_dict(money.compute_billing(inputs, **kwargs))
            assert again == stored
