"""Property-based requests generated from the adapter's own /openapi.json
(schemathesis: valid bodies, paths and parameters, and invalid ones): none may
get an answer of 500 or more.

The cases are drawn inside ordinary tests (rather than with schemathesis'
pytest plugin) because the schema comes from a server that a fixture starts."""

import logging
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from tests.helpers.models import TINY_MODEL_ID

log = logging.getLogger(__name__)

EXAMPLES_PER_OPERATION = 150
STATUSES: Counter[int] = Counter()

# In /openapi.json like every route, but not fuzzed: they delete, copy or download
# models (half the generated bodies name a real one), or answer nothing but 501.
NOT_FUZZED = {
    ("DELETE", "/api/delete"),
    ("POST", "/api/copy"),
    ("POST", "/api/pull"),
    ("POST", "/api/create"),
    ("POST", "/api/push"),
    ("POST", "/api/blobs/{digest}"),
    ("HEAD", "/api/blobs/{digest}"),
}


@pytest.fixture(scope="module")
def operations(server):
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    documented = {(result.ok().method.upper(), result.ok().path) for result in schema.get_all_operations()}
    # The list names routes that exist, so that a renamed one is not fuzzed unnoticed.
    assert documented >= NOT_FUZZED
    for method, path in NOT_FUZZED:
        schema = schema.exclude(method=method, path=path)
    found = [result.ok() for result in schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in found} == documented - NOT_FUZZED
    assert {(op.method.upper(), op.path) for op in found} >= {
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/{model_id}"),
        ("GET", "/health"),
        ("POST", "/v1/messages"),
        ("POST", "/api/chat"),
    }
    return found


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
def test_no_response_is_a_server_error(server, operations, mode):
    failures = []
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            # Random model names only ever reach "not found": half the bodies name a
            # real model, so that generation itself meets the generated values.
            if isinstance(case.body, dict) and isinstance(case.body.get("model"), str) and len(case.body["model"]) % 2:
                case.body["model"] = TINY_MODEL_ID
            response = case.call(base_url=server.base_url, timeout=120)
            STATUSES[response.status_code] += 1
            if response.status_code >= 500:
                failures.append((case.method, case.path, case.body, response.status_code, response.text[:300]))
            assert response.status_code < 500

        try:
            check()
        except AssertionError:
            pass  # collected in failures, with the shrunk example
        except Unsatisfiable:
            pass  # nothing invalid to send (GET /v1/models takes no input at all)
    assert not failures, failures[:5]


def test_report():
    if not STATUSES:
        pytest.skip("the schemathesis tests did not run")
    log.info(
        "schemathesis: %d requests, statuses %s, %d of them >= 500",
        sum(STATUSES.values()),
        dict(sorted(STATUSES.items())),
        sum(n for status, n in STATUSES.items() if status >= 500),
    )
    assert not any(status >= 500 for status in STATUSES)
