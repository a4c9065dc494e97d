"""Billing periods: one or a series, never overlapping, one open at a time, and
never deleted once they have billings (SPEC §2)."""

from __future__ import annotations

import re
from datetime import date

import pytest
import sqlalchemy as sa

from portal.billing import billings
from portal.billing.periods import series_dates
from portal.extensions import db
from portal.models import BillingPeriod, Commitment, Project, User

from .. import factories as f
from .conftest import audit_actions, count, get

#: Dates matter here: .ci/run also runs these at pinned days (tests/clock.py).
pytestmark = pytest.mark.calendar


@pytest.fixture
def project_id(app, auth, users):
    auth.login_user(users["admin"])
    with app.app_context():
        project = f.make_project()
        db.session.commit()
        return project.id


def periods_of(app, project_id: int) -> list[tuple]:
    with app.app_context():
        return [
            (p.sequence, p.start_date, p.end_date, p.due_date, p.status)
            for p in db.session.scalars(
                sa.select(BillingPeriod)
                .where(BillingPeriod.project_id == project_id)
                .order_by(BillingPeriod.sequence)
            )
        ]


def new_period(client, project_id, start, end, due, open_now="1"):
    return client.post(
        "/admin/periods/new",
        data={
            "project_id": project_id,
            "start_date": start,
            "end_date": end,
            "due_date": due,
            "billing_date": "",
            "open_now": open_now,
        },
    )


def test_create_one_and_refuse_overlaps(app, client, project_id) -> None:
    assert client.get(f"/admin/periods/new?project_id={project_id}").status_code == 200
    response = new_period(client, project_id, "2025-01-01", "2025-01-31", "2025-01-25")
    assert response.status_code == 302
    overlap = new_period(client, project_id, "2025-01-20", "2025-02-19", "2025-02-15")
    assert overlap.status_code == 400
    assert (
        "This overlaps period #1 (2025-01-01 to 2025-01-31). Periods of a project never overlap."
        in overlap.get_data(as_text=True)
    )
    backwards = new_period(client, project_id, "2025-03-10", "2025-03-01", "2025-02-01")
    assert backwards.status_code == 400
    text = backwards.get_data(as_text=True)
    assert "The end date must be on or after the start date." in text
    assert "The due date must be on or after the start date." in text
    garbage = new_period(client, project_id, "2025-13-45", "tomorrow", "")
    assert garbage.status_code == 400
    assert "Enter a date as YYYY-MM-DD." in garbage.get_data(as_text=True)
    assert periods_of(app, project_id) == [
        (1, date(2025, 1, 1), date(2025, 1, 31), date(2025, 1, 25), "open")
    ]


def test_opening_the_next_closes_the_previous(app, client, project_id) -> None:
    new_period(client, project_id, "2025-01-01", "2025-01-31", "2025-01-25")
    new_period(client, project_id, "2025-02-01", "2025-02-28", "2025-02-25")
    assert [p[4] for p in periods_of(app, project_id)] == ["closed", "open"]
    with app.app_context():
        first = db.session.scalars(
            sa.select(BillingPeriod).where(BillingPeriod.sequence == 1)
        ).one()
        first_id = first.id
    client.post(f"/admin/periods/{first_id}/open")
    assert [p[4] for p in periods_of(app, project_id)] == ["open", "closed"]
    client.post(f"/admin/periods/{first_id}/close")
    assert [p[4] for p in periods_of(app, project_id)] == ["closed", "closed"]
    actions = audit_actions(app, object_type="billing_period")
    assert actions.count("period.open") == 3 and actions.count("period.close") == 3


def test_generate_monthly_series(app, client, project_id) -> None:
    assert (
        client.get(f"/admin/periods/generate?project_id={project_id}").status_code
        == 200
    )
    response = client.post(
        "/admin/periods/generate",
        data={
            "project_id": project_id,
            "kind": "monthly",
            "start_date": "2024-12-01",
            "count": "3",
            "due_days_before_end": "5",
            "open_now": "1",
        },
    )
    assert response.status_code == 302
    assert periods_of(app, project_id) == [
        (1, date(2024, 12, 1), date(2024, 12, 31), date(2024, 12, 26), "open"),
        (2, date(2025, 1, 1), date(2025, 1, 31), date(2025, 1, 26), "closed"),
        (3, date(2025, 2, 1), date(2025, 2, 28), date(2025, 2, 23), "closed"),
    ]
    # A second series that would overlap is refused as a whole.
    again = client.post(
        "/admin/periods/generate",
        data={
            "project_id": project_id,
            "kind": "weekly",
            "start_date": "2025-02-24",
            "count": "4",
        },
    )
    assert again.status_code == 400
    assert "This overlaps period #3" in again.get_data(as_text=True)
    assert count(app, BillingPeriod) == 3


def test_series_dates_weekly_and_custom() -> None:
    weekly = series_dates("weekly", date(2025, 3, 2), 2)
    assert [(p.start_date, p.end_date) for p in weekly] == [
        (date(2025, 3, 2), date(2025, 3, 8)),
        (date(2025, 3, 9), date(2025, 3, 15)),
    ]
    custom = series_dates(
        "custom", date(2025, 1, 15), 2, length_days=14, due_days_before_end=20
    )
    assert [(p.start_date, p.end_date, p.due_date) for p in custom] == [
        (date(2025, 1, 15), date(2025, 1, 28), date(2025, 1, 15)),
        (date(2025, 1, 29), date(2025, 2, 11), date(2025, 1, 29)),
    ]
    mid_month = series_dates("monthly", date(2025, 1, 15), 2)
    assert [(p.start_date, p.end_date) for p in mid_month] == [
        (date(2025, 1, 15), date(2025, 1, 31)),
        (date(2025, 2, 1), date(2025, 2, 28)),
    ]


def test_generate_validates_its_inputs(app, client, project_id) -> None:
    response = client.post(
        "/admin/periods/generate",
        data={"project_id": "", "kind": "yearly", "start_date": "x", "count": "500"},
    )
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "Choose a project." in text
    assert "Choose one of the options." in text
    assert "Enter a number from 1 to 60." in text
    custom = client.post(
        "/admin/periods/generate",
        data={
            "project_id": project_id,
            "kind": "custom",
            "start_date": "2025-01-01",
            "count": "2",
        },
    )
    assert custom.status_code == 400
    assert count(app, BillingPeriod) == 0


def test_only_empty_periods_are_deleted(app, client, world, auth) -> None:
    w = world
    auth.login_user(w.admin_id)
    with app.app_context():
        project = db.session.get(Project, w.project_id)
        empty = f.make_period(
            project, 2, start=date(2030, 1, 1), due=date(2030, 2, 5), status="closed"
        )
        billings.create_billing(
            db.session.get(Commitment, w.commitment_id),
            db.session.get(BillingPeriod, w.period1_id),
            db.session.get(User, w.admin_id),
        )
        db.session.commit()
        empty_id = empty.id
    response = client.post(f"/admin/periods/{w.period1_id}/delete")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "has billings and is never deleted" in page
    assert get(app, BillingPeriod, w.period1_id) is not None
    client.post(f"/admin/periods/{empty_id}/delete")
    assert get(app, BillingPeriod, empty_id) is None
    assert "period.delete" in audit_actions(app, object_type="billing_period")


def test_edit_dates_never_overlap(app, client, project_id) -> None:
    new_period(client, project_id, "2025-01-01", "2025-01-31", "2025-01-25")
    new_period(client, project_id, "2025-02-01", "2025-02-28", "2025-02-25")
    with app.app_context():
        second = db.session.scalars(
            sa.select(BillingPeriod).where(BillingPeriod.sequence == 2)
        ).one()
        second_id = second.id
    assert client.get(f"/admin/periods/{second_id}/edit").status_code == 200
    response = client.post(
        f"/admin/periods/{second_id}/edit",
        data={
            "start_date": "2025-01-31",
            "end_date": "2025-02-28",
            "due_date": "2025-02-25",
        },
    )
    assert response.status_code == 400
    assert "overlaps period #1" in response.get_data(as_text=True)
    ok = client.post(
        f"/admin/periods/{second_id}/edit",
        data={
            "start_date": "2025-02-01",
            "end_date": "2025-02-28",
            "due_date": "2025-02-20",
        },
    )
    assert ok.status_code == 302
    assert get(app, BillingPeriod, second_id).due_date == date(2025, 2, 20)


def test_far_dates_are_refused_not_crashed(app, client, project_id) -> None:
    response = client.post(
        "/admin/periods/generate",
        data={
            "project_id": project_id,
            "kind": "monthly",
            "start_date": "9999-12-01",
            "count": "3",
        },
    )
    assert response.status_code == 400
    assert "between the years 1900 and 2200" in response.get_data(as_text=True)
    assert count(app, BillingPeriod) == 0


def _form_values(page: str) -> dict[str, str]:
    """The date fields' values and the chosen project of the new-period form."""
    values = dict(
        re.findall(
            r'name="(start_date|end_date|due_date|billing_date)"[^>]*value="([^"]*)"',
            page,
        )
    )
    chosen = re.search(r'<option value="(\d+)"[^>]* selected>', page)
    values["project_id"] = chosen.group(1) if chosen else ""
    return values


def test_the_new_period_form_suggests_the_next_free_month(
    app, client, project_id, today
) -> None:
    """Issue 14 item 11: opened from the dashboard (no project in the URL) the
    form used to suggest this month, which overlaps the open period, and a
    billing date that did not follow the end date. Untouched, it now saves."""
    this_month = today.replace(day=1)
    end = series_dates("monthly", this_month, 1)[0].end_date
    assert new_period(client, project_id, this_month, end, end).status_code == 302
    page = client.get("/admin/periods/new").get_data(as_text=True)
    values = _form_values(page)
    following = series_dates(
        "monthly", date.fromordinal(end.toordinal() + 1), 1, due_days_before_end=5
    )[0]
    assert values == {
        "project_id": str(project_id),  # the only project, chosen
        "start_date": following.start_date.isoformat(),
        "end_date": following.end_date.isoformat(),
        "due_date": following.due_date.isoformat(),
        "billing_date": "",  # follows the end date
    }
    response = client.post("/admin/periods/new", data={**values, "open_now": "1"})
    assert response.status_code == 302, response.get_data(as_text=True)
    [_, second] = periods_of(app, project_id)
    assert second[1:4] == (
        following.start_date,
        following.end_date,
        following.due_date,
    )
    with app.app_context():
        period = db.session.scalars(
            sa.select(BillingPeriod).where(BillingPeriod.sequence == 2)
        ).one()
        assert period.billing_date == following.end_date


def test_each_project_option_carries_its_own_next_free_month(
    app, client, project_id, today
) -> None:
    """With several projects none is chosen; each option carries its next free
    month, which the page's script puts in the dates when it is picked."""
    with app.app_context():
        other = f.make_project(number="2099", name="Other")
        db.session.commit()
        other_id = other.id
    this_month = today.replace(day=1)
    end = series_dates("monthly", this_month, 1)[0].end_date
    assert new_period(client, project_id, this_month, end, end).status_code == 302
    page = client.get("/admin/periods/new").get_data(as_text=True)
    assert _form_values(page)["project_id"] == ""
    nxt = series_dates(
        "monthly", date.fromordinal(end.toordinal() + 1), 1, due_days_before_end=5
    )[0]
    first = series_dates("monthly", this_month, 1, due_days_before_end=5)[0]
    assert (
        f'<option value="{project_id}" data-start="{nxt.start_date}" '
        f'data-end="{nxt.end_date}" data-due="{nxt.due_date}">'
    ) in page
    assert (
        f'<option value="{other_id}" data-start="{first.start_date}" '
        f'data-end="{first.end_date}" data-due="{first.due_date}">'
    ) in page
    assert "data-period-dates" in page
