"""A small version of the load run of ``chargeflow bench ocpp``: 50 stations against a served process."""

from __future__ import annotations

from chargeflow.bench.ocpp_load import run_load


async def test_fifty_stations_connected_at_once_are_all_answered() -> None:
    result = await run_load(stations=50, ramp_s=1.0, timeout_s=60)
    summary = result.summary()
    assert summary["connected"] == 50
    assert summary["boots_accepted"] == 50
    assert summary["answers"] == 150
    assert summary["errors"] == 0
    assert summary["server_rss_connected_mib"] > 0
    assert summary["answer_ms_p99"] < 1000
