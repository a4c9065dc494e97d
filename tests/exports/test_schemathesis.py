"""Schemathesis against the API's own OpenAPI document, in-process (WSGI).

Every operation gets a bounded number of generated requests (valid and
invalid); each answer must not be a 5xx and must match the document: status
code declared, JSON schema, content type, headers (issue 17). Runs in the
suite on each engine, so ``.ci/run`` runs it on SQLite and PostgreSQL.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from portal.exports.openapi import document

#: Generated requests per operation: enough to find the classes of mismatch
#: the attack run found (minimums, empty filters, media types, 405s), small
#: enough to keep the whole file well under two minutes.
MAX_EXAMPLES = 25
# Not checked: "every schema-valid request is accepted" (positive data
# acceptance). A well-formed request naming billings that do not exist, or
# are not approved, is rightly refused (400/409) — no schema can say which ids
# exist. Every other check runs: no 5xx, documented status codes, response
# schemas, content types, headers, and invalid requests refused.


def _operations(app) -> list:
    schema = schemathesis.openapi.from_wsgi("/exports/api/v1/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_api_conforms_to_its_document(app, data) -> None:
    """Every operation, bounded: no 5xx, and every answer as documented."""
    # identity: the WSGI client hands back the bytes as sent, and Flask-Compress
    # would otherwise send Brotli (a real HTTP client decodes it).
    headers = {
        "Authorization": f"Bearer {data.tokens['finance']}",
        "Accept-Encoding": "identity",
    }
    operations = _operations(app)
    assert len(operations) >= 6
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case) -> None:
            case.call_and_validate(
                headers=headers, excluded_checks=[positive_data_acceptance]
            )

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_document_is_served_as_built(client) -> None:
    served = client.get("/exports/api/v1/openapi.json").get_json()
    assert served == document()
