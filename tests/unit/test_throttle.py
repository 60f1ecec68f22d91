"""The pure rules of ``csm.throttle``: failure budgets and who may take a station's place."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from chargeflow.csm.throttle import Admission, Budget, FailureBudget, may_replace
from chargeflow.protocols.ocpp.server import client_address


def test_a_budget_allows_its_burst_then_one_more_per_refill() -> None:
    budget = FailureBudget(Budget(burst=3, refill_s=10.0))
    for _ in range(3):
        assert budget.retry_after_s("k", 0.0) is None
        budget.failed("k", 0.0)
    assert budget.retry_after_s("k", 0.0) == 10
    assert budget.retry_after_s("k", 9.5) == 1
    assert budget.retry_after_s("k", 10.0) is None
    assert budget.retry_after_s("other", 0.0) is None


@given(st.lists(st.floats(0, 1000), max_size=200))
def test_never_more_failures_than_the_burst_and_the_refills(times: list[float]) -> None:
    budget = FailureBudget(Budget(burst=5, refill_s=7.0))
    allowed = 0
    for now in sorted(times):
        if budget.retry_after_s("k", now) is None:
            allowed += 1
            budget.failed("k", now)
    assert allowed <= 5 + (max(times, default=0.0) / 7.0) + 1


def test_the_keys_kept_are_bounded() -> None:
    budget = FailureBudget(Budget(burst=2, refill_s=60.0), max_keys=100)
    for n in range(10_000):
        budget.failed(f"10.0.{n // 256}.{n % 256}", float(n) / 1000)
    assert len(budget) <= 100


def test_only_a_verified_newcomer_displaces_a_live_connection() -> None:
    assert may_replace(Admission.VERIFIED, 0.0, 360.0)
    assert not may_replace(Admission.OPEN, 10.0, 360.0)
    assert may_replace(Admission.OPEN, 400.0, 360.0)
    assert not may_replace(Admission.REFUSED, 10_000.0, 360.0)


def test_a_failure_counted_ahead_is_taken_back_after_a_success() -> None:
    budget = FailureBudget(Budget(burst=2, refill_s=60.0))
    budget.failed("k", 0.0)
    budget.failed("k", 0.0)  # two attempts in flight: the budget is spent for a third
    assert budget.retry_after_s("k", 0.0) is not None
    budget.refund("k", 1.0)  # one of them was right
    assert budget.retry_after_s("k", 1.0) is None
    budget.refund("nobody", 1.0)
    assert len(budget) == 1


def test_the_client_behind_trusted_proxies_is_the_last_untrusted_hop() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    assert client_address("203.0.113.5", "1.2.3.4", proxies) == "203.0.113.5"  # not from a proxy
    assert client_address("10.0.0.1", "1.2.3.4, 198.51.100.7", proxies) == "198.51.100.7"
    assert client_address("10.0.0.1", "198.51.100.7, 10.0.0.2", proxies) == "198.51.100.7"
    assert client_address("10.0.0.1", None, proxies) == "10.0.0.1"
    assert client_address("10.0.0.1", "1.2.3.4", []) == "10.0.0.1"  # no proxy named: header ignored
