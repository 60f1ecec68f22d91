"""schemathesis against the REST API's own OpenAPI document: no request, however odd, gets a 5xx.

The API (``web.api`` with billing's routes) runs in process on the in-memory stores with the admin
token; schemathesis draws requests for every operation from the OpenAPI document (valid and invalid
bodies, paths and queries) and each must be answered below 500. Bounded by ``max_examples`` per
operation. The same check against ``chargeflow serve`` on SQLite, for longer, is a command in
docs/security.md.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok
from schemathesis.schemas import BaseSchema

from chargeflow.billing.service import BillingService
from chargeflow.billing.setup import BillingRules
from chargeflow.clock import SystemClock
from chargeflow.csm.service import CsmConfig
from chargeflow.protocols.ocpp.server import OcppServerConfig
from chargeflow.runtime.app import BillingHooks, build_csm
from chargeflow.store.billing_memory import MemoryBillingStore
from chargeflow.store.memory import MemoryRepository
from chargeflow.web.api import create_api

TOKEN = "schemathesis-admin-token"
EXAMPLES = 20  # per operation and mode: about 800 requests in all


@pytest.fixture
def api_schema() -> BaseSchema:
    repository = MemoryRepository()
    billing = BillingService(MemoryBillingStore(repository), BillingRules(), UTC)
    node = build_csm(
        repository,
        SystemClock(),
        CsmConfig(auto_register=True),
        OcppServerConfig(host="127.0.0.1", port=0),
        operation_timeout_s=0.5,
        hooks=BillingHooks(billing),
    )
    counter = itertools.count(1)
    app = create_api(node.service, node.operations, TOKEN, lambda: next(counter), billing=billing)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_to_the_api_gets_a_server_error(api_schema: BaseSchema, mode: GenerationMode) -> None:
    operations = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # the document itself is valid OpenAPI
        operations.append(result.ok())
    assert len(operations) >= 15  # the whole API, billing's routes included
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        @given(operation.as_strategy(generation_mode=mode))
        def call(case: Case[Any]) -> None:
            response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        call()
    print(f"\n{mode.value}: {statuses.total()} requests over {len(operations)} operations: {dict(statuses)}")
    assert failures == []
    if mode is GenerationMode.POSITIVE:  # negative cases may bend the headers too
        assert statuses[401] == 0  # every request carried the admin token and reached its operation
