"""``chargeflow bench fuzz``: schema-drawn and bent OCPP frames against ``chargeflow serve`` for N seconds."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from chargeflow.commands import event_loop
from chargeflow.commands.bench_ocpp import _bench_subparsers

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(sub: Subparsers) -> None:
    parser = _bench_subparsers(sub).add_parser(
        "fuzz",
        help="fuzz chargeflow serve with OCPP frames from the schemas; crashes, RSS, a normal station's p99",
        description=(
            "chargeflow serve (SQLite) as its own process; fuzzing stations (1.6 and 2.0.1) send CALL "
            "frames drawn from the OCPP schemas for every action the CSM accepts, half of them bent "
            "once, while a normal station sends heartbeats. Prints frames sent, crashes (connections "
            "closed, answers of the wrong kind, exceptions in the server's log), the server's RSS "
            "before and after, and the normal station's p99 round trip. Exits 1 on any crash."
        ),
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to fuzz (default 60)")
    parser.add_argument("--seed", type=int, default=1, help="the random seed: same seed, same frames")
    parser.add_argument("--stations", type=int, default=1, help="fuzzing stations per version (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chargeflow.bench.fuzz import run_fuzz

    if not 1 <= args.seconds <= 86_400 or not 1 <= args.stations <= 50:
        print("chargeflow bench fuzz: --seconds 1..86400 and --stations 1..50", file=sys.stderr)
        return 2
    result = event_loop.run(run_fuzz(args.seconds, args.seed, args.stations))
    figures = result.summary()
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(
            f"{figures['frames_sent']} frames in {args.seconds:g} s ({figures['frames_bent']} bent, seed "
            f"{args.seed}): {figures['crashes']} crashes ({figures['connections_closed']} connections "
            f"closed, {figures['wrong_answers']} wrong answers, {figures['server_exceptions']} server "
            f"exceptions); server RSS {figures['server_rss_before_mib']} -> "
            f"{figures['server_rss_after_mib']} MiB; normal station p50 "
            f"{figures['normal_station_p50_ms']} ms, p99 {figures['normal_station_p99_ms']} ms over "
            f"{figures['normal_station_heartbeats']} heartbeats"
        )
        print("answers: " + ", ".join(f"{k} {v}" for k, v in figures["answers"].items()))
        for example in figures["wrong_answer_examples"]:
            print(f"  wrong answer: {example}")
        for kind, count in figures["server_exception_kinds"].items():
            print(f"  server exception ({count}x): {kind}")
    return 0 if result.crashes == 0 else 1
