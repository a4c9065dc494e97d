"""The exports JSON API: token auth, roles, pagination, every error, OpenAPI."""

from __future__ import annotations

import hashlib
import re

import pytest
import sqlalchemy as sa
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from portal.extensions import db
from portal.models import ApiToken, Billing, ExportBatch, Project, User
from portal.timeutil import utcnow
from tests.conftest import Auth, make_test_app

API = "/exports/api/v1"


class Api:
    """A test client that validates every JSON answer against the OpenAPI doc."""

    def __init__(self, client, token: str | None = None) -> None:
        self.client = client
        self.token = token
        doc = client.get(f"{API}/openapi.json").get_json()
        self.doc = doc
        self.registry = Registry().with_resource(
            "urn:openapi", DRAFT202012.create_resource(doc)
        )
        self.checked: list[tuple[str, str, int]] = []

    def _template(self, path: str) -> str:
        route = path.split("?")[0].removeprefix(API)
        for template in self.doc["paths"]:
            pattern = "^" + re.sub(r"\{[^}]+\}", r"[0-9]+", template) + "$"
            if re.match(pattern, route):
                return template
        raise AssertionError(f"{route} is not in the OpenAPI document")

    def validate(self, method: str, path: str, response) -> None:
        template = self._template(path)
        operation = self.doc["paths"][template][method]
        status = str(response.status_code)
        assert status in operation["responses"], (method, template, status)
        if response.mimetype == "application/json":
            pointer = (
                "/paths/"
                + template.replace("~", "~0").replace("/", "~1")
                + f"/{method}/responses/{status}/content/application~1json/schema"
            )
            validator = Draft202012Validator(
                {"$ref": "urn:openapi#" + pointer}, registry=self.registry
            )
            validator.validate(response.get_json())
        self.checked.append((method, template, response.status_code))

    def _headers(self, token: str | None) -> dict[str, str]:
        token = self.token if token is None else token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, token: str | None = None):
        response = self.client.get(API + path, headers=self._headers(token))
        self.validate("get", API + path, response)
        return response

    def post(self, path: str, token: str | None = None, **kw):
        response = self.client.post(API + path, headers=self._headers(token), **kw)
        self.validate("post", API + path, response)
        return response


@pytest.fixture
def api(client, data):
    return Api(client, data.tokens["finance"])


def _error(response, status: int) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) >= {"error", "message"} and body["message"]
    return body


# --------------------------------------------------------------------- auth


def test_no_token_is_401_json_with_a_bearer_challenge(api, client) -> None:
    response = client.get(f"{API}/billings")
    body = _error(response, 401)
    assert "Bearer" in body["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    _error(client.get(f"{API}/billings", headers={"Authorization": "Basic abc"}), 401)
    _error(client.get(f"{API}/billings", headers={"Authorization": "Bearer "}), 401)
    _error(api.get("/billings", token="pbt_not-a-real-token"), 401)


def test_a_session_cookie_is_not_enough(api, auth, data, client) -> None:
    auth.login_user(data.finance_id)
    _error(client.get(f"{API}/batches"), 401)


def test_revoked_token_is_401(api, app, data) -> None:
    assert api.get("/billings").status_code == 200
    with app.app_context():
        token = db.session.scalar(
            sa.select(ApiToken).where(ApiToken.user_id == data.finance_id)
        )
        token.revoked_at = utcnow()
        db.session.commit()
    body = _error(api.get("/billings"), 401)
    assert "revoked" in body["message"]


def test_deactivated_users_token_is_401(api, app, data) -> None:
    with app.app_context():
        db.session.get(User, data.finance_id).active = False
        db.session.commit()
    _error(api.get("/billings"), 401)


def test_token_use_is_recorded(api, app, data) -> None:
    api.get("/batches")
    with app.app_context():
        token = db.session.scalar(
            sa.select(ApiToken).where(ApiToken.user_id == data.finance_id)
        )
        assert token.last_used_at is not None


def test_reading_twice_within_a_minute_commits_nothing(api, app, data) -> None:
    """The first GET records the token's use; a second one within the minute
    writes nothing, so it must not pay a COMMIT (issue 16: the list committed on
    every GET)."""
    assert api.get("/billings").status_code == 200
    commits: list[int] = []

    def on_commit(conn) -> None:
        commits.append(1)

    with app.app_context():
        engine = db.engine
        sa.event.listen(engine, "commit", on_commit)
        try:
            assert api.get("/billings").status_code == 200
            assert api.get(f"/billings/{data.billing2_id}").status_code == 200
        finally:
            sa.event.remove(engine, "commit", on_commit)
    assert commits == []


def test_list_shows_each_decided_billings_line_8(api, app, data) -> None:
    """The list reads line 8 alone from the stored figures: it must equal the
    detail's, which reads them all."""
    listed = {b["id"]: b for b in api.get("/billings?per_page=100").get_json()["items"]}
    assert any(b["current_payment_due"] is not None for b in listed.values())
    for billing_id, summary in listed.items():
        detail = api.get(f"/billings/{billing_id}").get_json()
        assert summary["current_payment_due"] == (
            detail["totals"]["current_payment_due"]
            if detail["figures_frozen"]
            else None
        ), billing_id


def test_viewer_reads_but_cannot_create_batches(api, data) -> None:
    viewer = data.tokens["viewer"]
    assert api.get("/billings", token=viewer).status_code == 200
    assert api.get(f"/billings/{data.billing2_id}", token=viewer).status_code == 200
    response = api.post(
        "/batches",
        token=viewer,
        json={"format": "csv", "billing_ids": [data.billing1_id]},
    )
    _error(response, 403)
    created = api.post(
        "/batches", json={"format": "csv", "billing_ids": [data.billing1_id]}
    )
    assert created.status_code == 201
    admin = api.post(
        "/batches",
        token=data.tokens["admin"],
        json={"format": "iif", "billing_ids": [data.billing2_id]},
    )
    assert admin.status_code == 201


def test_openapi_is_public_and_describes_every_api_route(api, app) -> None:
    doc = api.doc
    assert doc["openapi"].startswith("3.1")
    rules = {
        re.sub(
            r"<(?:int:)?([a-z_]+)>", r"{\1}", rule.rule.removeprefix(API)
        ): rule.methods - {"HEAD", "OPTIONS"}
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(API)
    }
    documented = {path: set(ops) for path, ops in doc["paths"].items()}
    for path, methods in rules.items():
        assert path in documented, path
        assert {m.lower() for m in methods} <= documented[path], path
    for path in documented:
        assert path in rules, path


# ----------------------------------------------------------------- billings


def test_billing_detail_has_lines_and_totals_as_decimal_strings(api, data) -> None:
    body = api.get(f"/billings/{data.billing2_id}").get_json()
    assert body["status"] == "approved_as_noted"
    assert body["commitment"]["number"] == "SC-100"
    assert body["vendor"] == {
        "id": data.vendor_id,
        "name": "Example Electric",
        "erp_vendor_code": "EXEL",
    }
    assert body["period"]["sequence"] == 2
    assert body["figures_frozen"] is True
    assert body["exported"] is False
    t = body["totals"]
    assert t == {
        "original_contract_sum": "100000.00",
        "net_change_by_change_orders": "5000.00",
        "contract_sum_to_date": "105000.00",
        "total_completed_and_stored": "51500.00",
        "retainage": "5025.00",
        "retainage_on_work": "4900.00",
        "retainage_on_materials": "125.00",
        "retainage_released_to_date": "0.00",
        "total_earned_less_retainage": "46475.00",
        "previous_certificates": "23700.00",
        "current_payment_due": "22775.00",
        "balance_to_finish_including_retainage": "58525.00",
        "percent_complete": "49.05",
    }
    assert body["current_payment_due"] == "22775.00"
    l1, l2, l3 = body["lines"]
    assert (l1["previous_work"], l1["work_this_period"], l1["retainage"]) == (
        "20000.00",
        "15000.00",
        "3500.00",
    )
    assert l1["percent_complete"] == "70.00"
    assert (l2["scheduled_value"], l2["materials_stored"], l2["percent_complete"]) == (
        "35000.00",
        "2500.00",
        "18.57",
    )
    assert l2["balance_to_finish"] == "28500.00"
    zero = {"materials_stored": "0.00", "materials_new": "0.00"}
    assert l3["claimed"] == {
        "work_this_period": "12345.67",
        **zero,
        "materials_installed": "0.00",
    }
    assert l3["approved"] == {
        "work_this_period": "10000.00",
        **zero,
        "materials_installed": "0.00",
    }
    # L2 carries F: 6,000.00 before, 3,500.00 installed, 2,500.00 left.
    assert (
        l2["materials_previous"],
        l2["materials_new"],
        l2["materials_installed"],
    ) == ("6000.00", "0.00", "3500.00")
    assert l2["claimed"]["materials_stored"] == "2500.00"
    assert l3["work_this_period"] == "10000.00"
    assert l3["reviewer_comment"] == "Per site walk"
    assert l3["cost_code"] == "26-300" and l3["description"] == "Line 3"

    def no_floats(value) -> None:
        assert not isinstance(value, float)
        if isinstance(value, dict):
            for v in value.values():
                no_floats(v)
        if isinstance(value, list):
            for v in value:
                no_floats(v)

    no_floats(body)


def test_billing_404(api) -> None:
    body = _error(api.get("/billings/999999"), 404)
    assert "999999" in body["message"]


def test_billings_filters(api, data) -> None:
    def ids(query: str) -> list[int]:
        return [b["id"] for b in api.get(f"/billings{query}").get_json()["items"]]

    assert ids("?status=approved") == [data.billing1_id]
    assert ids("?status=approved_as_noted") == [data.billing2_id]
    assert ids("?status=approved,approved_as_noted&exported=false") == [
        data.billing2_id,
        data.billing1_id,
    ]
    assert ids("?status=draft") == []
    assert ids(f"?project={data.project_id}") == [data.billing2_id, data.billing1_id]
    assert ids(f"?period={data.period2_id}") == [data.billing2_id]
    assert ids(f"?vendor={data.vendor_id}&status=approved") == [data.billing1_id]
    assert ids("?project=999999") == []
    api.post("/batches", json={"format": "csv", "billing_ids": [data.billing1_id]})
    assert ids("?exported=false") == [data.billing2_id]
    assert ids("?exported=true") == [data.billing1_id]
    summary = api.get("/billings?exported=true").get_json()["items"][0]
    assert summary["exported"] is True and summary["export_batch_id"]
    assert summary["current_payment_due"] == "23700.00"


@pytest.mark.parametrize(
    "query",
    [
        "?status=bogus",
        "?status=approved,bogus",
        "?exported=maybe",
        "?project=abc",
        "?period=-1",
        "?page=0",
        "?page=x",
        "?per_page=101",
        "?per_page=0",
    ],
)
def test_billings_bad_parameters_are_400(api, query: str) -> None:
    _error(api.get(f"/billings{query}"), 400)


def test_billings_pagination_with_total_and_next_links(api, data) -> None:
    page1 = api.get("/billings?per_page=1").get_json()
    assert page1["total"] == 2 and page1["pages"] == 2
    assert page1["page"] == 1 and page1["per_page"] == 1
    assert [b["id"] for b in page1["items"]] == [data.billing2_id]
    assert page1["links"]["prev"] is None
    next_url = page1["links"]["next"]
    assert next_url.startswith("http://portal.test/exports/api/v1/billings?")
    assert "page=2" in next_url and "per_page=1" in next_url
    page2 = api.get("/billings?" + next_url.split("?", 1)[1]).get_json()
    assert [b["id"] for b in page2["items"]] == [data.billing1_id]
    assert page2["links"]["next"] is None and "page=1" in page2["links"]["prev"]
    beyond = api.get("/billings?per_page=1&page=5").get_json()
    assert beyond["items"] == [] and beyond["links"]["next"] is None
    filtered = api.get("/billings?status=approved&per_page=1").get_json()
    assert "status=approved" in filtered["links"]["self"]


# ------------------------------------------------------------------ batches


def test_create_download_and_list_batches(api, app, data) -> None:
    response = api.post(
        "/batches",
        json={"format": "sage300", "billing_ids": [data.billing2_id, data.billing1_id]},
    )
    assert response.status_code == 201
    batch = response.get_json()
    assert response.headers["Location"].endswith(
        f"/exports/api/v1/batches/{batch['id']}"
    )
    assert batch["status"] == "live"
    assert batch["billing_ids"] == sorted([data.billing1_id, data.billing2_id])
    assert batch["total_amount"] == "46475.00"
    assert batch["filename"].endswith("-sage300.txt")

    file1 = api.get(f"/batches/{batch['id']}/file")
    file2 = api.get(f"/batches/{batch['id']}/file")
    assert file1.status_code == 200 and file1.data == file2.data
    assert hashlib.sha256(file1.data).hexdigest() == batch["sha256"]
    assert file1.headers["X-Content-SHA256"] == batch["sha256"]
    assert "attachment" in file1.headers["Content-Disposition"]
    assert batch["filename"] in file1.headers["Content-Disposition"]
    assert file1.data.startswith(b'"APIF","EXEL","EE-2001"')
    with app.app_context():
        stored = db.session.get(ExportBatch, batch["id"])
        assert stored.content == file1.data
        assert stored.created_by_id == data.finance_id

    assert api.get(f"/batches/{batch['id']}").get_json() == batch
    listing = api.get("/batches").get_json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == batch["id"]
    assert api.get("/batches?reversed=true").get_json()["total"] == 0
    _error(api.get("/batches?reversed=perhaps"), 400)


def test_batch_404s(api) -> None:
    _error(api.get("/batches/424242"), 404)
    _error(api.get("/batches/424242/file"), 404)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": "not json", "content_type": "text/plain"},
        {"data": "{broken", "content_type": "application/json"},
        {"json": ["csv", 1]},
        {"json": {"billing_ids": [1]}},
        {"json": {"format": "pdf", "billing_ids": [1]}},
        {"json": {"format": "csv"}},
        {"json": {"format": "csv", "billing_ids": []}},
        {"json": {"format": "csv", "billing_ids": ["1"]}},
        {"json": {"format": "csv", "billing_ids": [True]}},
        {"json": {"format": "csv", "billing_ids": [1.5]}},
        {"json": {"format": "csv", "billing_ids": [1], "extra": 1}},
        {"json": {"format": "iif", "billing_ids": [1], "include_vendors": "yes"}},
        {"json": {"format": "csv", "billing_ids": list(range(1, 1002))}},
    ],
)
def test_bad_batch_requests_are_400(api, kwargs) -> None:
    _error(api.post("/batches", **kwargs), 400)


def test_unknown_billing_ids_are_400_and_write_nothing(api, app, data) -> None:
    body = _error(
        api.post(
            "/batches",
            json={"format": "csv", "billing_ids": [data.billing1_id, 987654]},
        ),
        400,
    )
    assert body["unknown_ids"] == [987654]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ExportBatch.id))) == 0


def test_already_exported_is_409(api, data) -> None:
    first = api.post(
        "/batches", json={"format": "csv", "billing_ids": [data.billing1_id]}
    )
    assert first.status_code == 201
    body = _error(
        api.post(
            "/batches", json={"format": "xlsx", "billing_ids": [data.billing1_id]}
        ),
        409,
    )
    assert "Already exported" in body["message"]


def test_missing_codes_are_409_with_problems(api, app, data) -> None:
    with app.app_context():
        db.session.get(Project, data.project_id).erp_job_number = None
        db.session.commit()
    body = _error(
        api.post(
            "/batches",
            json={"format": "csv", "billing_ids": [data.billing1_id, data.billing2_id]},
        ),
        409,
    )
    assert body["problems"] == [
        {
            "billing_id": data.billing1_id,
            "problems": ["Missing job number for project 1024"],
        },
        {
            "billing_id": data.billing2_id,
            "problems": ["Missing job number for project 1024"],
        },
    ]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ExportBatch.id))) == 0
        assert db.session.get(Billing, data.billing1_id).export_batch_id is None


def test_unknown_paths_and_methods_answer_json(client, data) -> None:
    headers = {"Authorization": f"Bearer {data.tokens['finance']}"}
    response = client.get(f"{API}/nothing-here", headers=headers)
    assert response.status_code == 404 and response.mimetype == "application/json"
    response = client.delete(f"{API}/batches/1", headers=headers)
    assert response.status_code == 405 and response.mimetype == "application/json"


def test_api_posts_need_no_csrf_token(database_url, tmp_path, data) -> None:
    strict = make_test_app(database_url, tmp_path, WTF_CSRF_ENABLED=True)
    client = strict.test_client()
    response = client.post(
        f"{API}/batches",
        json={"format": "csv", "billing_ids": [data.billing1_id]},
        headers={"Authorization": f"Bearer {data.tokens['finance']}"},
    )
    assert response.status_code == 201, response.get_json()
    # Pages keep their CSRF protection.
    page = client.post("/exports/batches", data={"format": "csv"})
    assert page.status_code in (302, 400, 401)
    assert page.status_code != 201


def test_every_documented_operation_was_checked(api, data) -> None:
    """A smoke pass over every operation, each answer validated against the doc."""
    api.get("/billings")
    api.get(f"/billings/{data.billing1_id}")
    created = api.post(
        "/batches",
        json={
            "format": "iif",
            "billing_ids": [data.billing1_id],
            "include_vendors": True,
        },
    ).get_json()
    api.get("/batches")
    api.get(f"/batches/{created['id']}")
    file = api.get(f"/batches/{created['id']}/file")
    assert file.data.startswith(b"!VEND\tNAME")
    operations = {
        (method, path) for path, ops in api.doc["paths"].items() for method in ops
    }
    operations.discard(("get", "/openapi.json"))
    assert {(m, p) for m, p, _ in api.checked} == operations


# --------------------------------------------------------------------- issue 17

HUGE = "99999999999"


@pytest.mark.parametrize("name", ["project", "period", "vendor", "commitment"])
def test_ids_beyond_the_integer_range_are_400(api, name: str) -> None:
    _error(api.get(f"/billings?{name}={HUGE}"), 400)
    assert api.get(f"/billings?{name}=2147483647").status_code == 200


def test_a_huge_billing_id_in_a_batch_is_400(api) -> None:
    _error(api.post("/batches", json={"format": "csv", "billing_ids": [2**31]}), 400)


def test_finance_pages_ignore_huge_ids(client, auth, data) -> None:
    auth.login_user(data.finance_id)
    for page in ("/exports/", "/exports/batches"):
        query = {"project": HUGE, "period": HUGE, "vendor": HUGE, "page": HUGE}
        assert client.get(page, query_string=query).status_code == 200, page


def test_reactivated_users_old_tokens_stay_revoked(api, app, data, client) -> None:
    admin = Auth(app, client)
    admin.login_user(data.admin_id)
    with app.app_context():
        user = db.session.get(User, data.finance_id)
        form = {"email": user.email, "name": user.name, "role": user.role}
        db.session.remove()
    url = f"/admin/users/{data.finance_id}"
    assert client.post(url, data=form).status_code == 302  # deactivated
    assert client.post(url, data={**form, "active": "1"}).status_code == 302
    _error(api.get("/billings"), 401)
