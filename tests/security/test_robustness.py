"""Hostile values that used to slip through (issue 17): ids beyond the
database's integer range in signed links, control characters in the ERP
cost-code key, the SOV CSV import and reason fields."""

from __future__ import annotations

import sqlalchemy as sa

from portal.accounts import tokens
from portal.billing import invitations
from portal.contracts.sov_import import parse_sov_csv
from portal.extensions import db
from portal.models import Contact, ErpCostCode, Invitation

from .. import factories as f
from ..conftest import Auth

HOSTILE = "a\x1bb\x7fc\x07d"


def test_a_signed_token_naming_a_huge_id_is_an_invalid_link(app, client) -> None:
    with app.app_context(), app.test_request_context():
        token = tokens.serializer().dumps({"l": 2**40})
    for method in (client.get, client.post):
        response = method(f"/portal/link/{token}")
        assert response.status_code == 410, response.status_code


def test_erp_cost_code_key_with_control_characters_is_refused(app, client) -> None:
    with app.app_context():
        user_id = f.make_user("finance").id
        db.session.commit()
        db.session.remove()
    Auth(app, client).login_user(user_id)
    for key in ("26-100\x00", "26-100\r\nX", "26\x1b100"):
        response = client.post(
            "/exports/settings/cost-codes",
            data={"cc-0-code": key, "cc-0-sage_cost_code": "X1"},
        )
        assert response.status_code == 400, (key, response.status_code)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ErpCostCode.id))) == 0
        db.session.remove()


def test_sov_csv_import_drops_control_characters() -> None:
    data = (
        f"line,cost code,description,scheduled value\n1,26\x1b-100,{HOSTILE},100.00\n"
    )
    rows = parse_sov_csv(data.encode())
    assert [(r.cost_code, r.description) for r in rows] == [("26-100", "abcd")]


def test_decline_reason_drops_control_characters(ctx, world) -> None:
    contact = db.session.get(Contact, world.contact_id)
    invitation = Invitation(
        period_id=world.period1_id,
        commitment_id=world.commitment_id,
        contact_id=contact.id,
        status="invited",
    )
    db.session.add(invitation)
    db.session.flush()
    invitations.answer(invitation, contact, accept=False, reason=HOSTILE + "\nline 2")
    assert invitation.decline_reason == "abcd\nline 2"


# ------------------------------------------------------------------ headers


def test_export_download_declares_one_charset(app, client) -> None:
    from portal.exports.api import send_batch_file
    from portal.models import ExportBatch

    batch = ExportBatch(
        content=b"!TRNS\r\n",
        content_type="text/plain; charset=windows-1252",
        filename="batch.iif",
        sha256="0" * 64,
    )
    with app.test_request_context():
        response = send_batch_file(batch)
    assert response.headers["Content-Type"] == "text/plain; charset=windows-1252"


def test_finance_pages_are_not_stored(app, client) -> None:
    with app.app_context():
        user_id = f.make_user("finance").id
        db.session.commit()
        db.session.remove()
    Auth(app, client).login_user(user_id)
    for page in ("/exports/", "/exports/batches", "/exports/settings"):
        response = client.get(page)
        assert response.status_code == 200, page
        assert "no-store" in response.headers.get("Cache-Control", ""), page


def test_405_keeps_allow(client) -> None:
    for path in ("/admin/logout", "/exports/api/v1/billings"):
        response = client.delete(path)
        assert response.status_code == 405
        assert response.headers.get("Allow"), path


def test_gunicorn_sends_no_server_header(database_url, tmp_path) -> None:
    """The README's recipe, for real: gunicorn from the project folder."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "a-long-random-test-key-for-gunicorn-only",
        "PORTAL_RATELIMIT_ENABLED": "false",
    }
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    proc = subprocess.Popen(
        [gunicorn, "-w", "1", "-b", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/admin/login", timeout=2
                ) as answer:
                    headers = answer.headers
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("gunicorn did not answer")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "Server" not in headers, headers.get("Server")
