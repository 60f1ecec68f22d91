"""The throughput comparison of ``chargeflow bench ocpp`` on a few frames: both paths answer every one."""

from __future__ import annotations

import json

import pytest

from chargeflow.bench.ocpp import compare
from chargeflow.cli import main


async def test_both_paths_answer_every_frame_without_error() -> None:
    result = await compare(messages=120, stations=4)
    assert set(result) == {"MeterValues 1.6", "TransactionEvent 2.0.1"}
    for figures in result.values():
        assert figures["messages"] == 120
        assert figures["chargeflow_errors"] == 0
        assert figures["library_errors"] == 0
        assert figures["chargeflow_msgs_per_s"] > 0
        assert figures["library_route_message_msgs_per_s"] > 0


def test_bench_ocpp_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "bench",
        "ocpp",
        "--json",
        "--stations",
        "0",
        "--messages",
        "40",
        "--concurrency",
        "2",
        "--repeat",
        "1",
    ]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["machine"]["cpus"] >= 1
    assert printed["throughput_goal_ratio"] == 3.0
    assert printed["throughput"]["MeterValues 1.6"]["messages"] == 40
    assert "load" not in printed
