"""ERP settings domain functions (portal.finance.erp)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.finance import batches as export_batches
from portal.finance import erp
from portal.models import AuditEvent, ErpCostCode, ErpSettings
from tests import factories as f


def test_defaults_before_anything_is_saved(ctx) -> None:
    row = export_batches.erp_settings()
    assert row.ap_account == "" and row.default_sage_category == "S"
    assert db.session.get(ErpSettings, 1) is None  # nothing written by reading


def test_first_save_creates_the_single_row(ctx) -> None:
    user = f.make_user("finance")
    changed = erp.save_settings(
        user, {"ap_account": " 2000 ", "retainage_payable_account": "2100"}
    )
    db.session.commit()
    assert changed is True
    row = db.session.get(ErpSettings, 1)
    assert (row.ap_account, row.retainage_payable_account) == ("2000", "2100")
    assert row.default_sage_category == ""  # blank means "none" once saved
    assert (
        erp.save_settings(
            user, {"ap_account": "2000", "retainage_payable_account": "2100"}
        )
        is False
    )
    assert (
        db.session.scalar(
            sa.select(sa.func.count(AuditEvent.id)).where(
                AuditEvent.action == "erp.settings"
            )
        )
        == 1
    )


def test_viewers_cannot_change_settings(ctx) -> None:
    viewer = f.make_user("viewer")
    with pytest.raises(erp.SettingsForbidden):
        erp.save_settings(viewer, {"ap_account": "x"})
    with pytest.raises(erp.SettingsForbidden):
        erp.save_cost_codes(viewer, {})
    with pytest.raises(erp.SettingsForbidden):
        erp.save_vendor_codes(viewer, {})
    with pytest.raises(erp.SettingsForbidden):
        erp.save_project_codes(viewer, {})
    with pytest.raises(erp.SettingsForbidden):
        erp.fill_sage_cost_codes(viewer)


def test_cost_codes_are_created_on_first_save_and_validated(ctx) -> None:
    user = f.make_user("admin")
    project = f.make_project()
    f.make_commitment(project, lines=[("09-900", "100.00")])
    assert list(db.session.scalars(erp.cost_codes_select())) == ["09-900"]
    with pytest.raises(erp.SettingsInvalid) as caught:
        erp.save_cost_codes(user, {"09-900": {"sage_category": "x" * 21}})
    assert caught.value.errors == {"cc-0-sage_category": "Use at most 20 characters."}
    assert erp.save_cost_codes(user, {"09-900": {"expense_account": "Paint"}}) == 1
    row = db.session.scalar(sa.select(ErpCostCode))
    assert (row.cost_code, row.expense_account, row.sage_cost_code) == (
        "09-900",
        "Paint",
        "",
    )
    assert erp.save_cost_codes(user, {"09-900": {"expense_account": "Paint"}}) == 0
    assert erp.fill_sage_cost_codes(user) == 1
    assert row.sage_cost_code == "09-900"
    assert erp.fill_sage_cost_codes(user) == 0
