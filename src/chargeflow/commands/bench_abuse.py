"""``chargeflow bench abuse``: abusive clients against ``chargeflow serve``, and what normal stations see."""

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
        "abuse",
        help="clients that send 1 MiB frames without reading and 100 MiB bodies, against serve",
        description=(
            "chargeflow serve as its own process (SQLite in a temporary folder); ABUSERS clients send "
            "MeterValues of FRAME bytes without ever reading (and connect again when closed), two HTTP "
            "requests send 100 MiB bodies (declared and chunked), while STATIONS normal stations send a "
            "Heartbeat every 0.1 s and time the answers. Prints the server's RSS before, at most and after, "
            "its CPU time, the normal stations' p50/p99 and the frames refused (docs/security.md)."
        ),
    )
    parser.add_argument("--abusers", type=int, default=3, help="non-reading clients (default 3)")
    parser.add_argument("--frame-bytes", type=int, default=1_000_000, help="their frames (default 1000000)")
    parser.add_argument("--stations", type=int, default=5, help="well-behaved stations (default 5)")
    parser.add_argument("--seconds", type=float, default=10.0, help="the attack's length (default 10)")
    parser.add_argument("--body-mib", type=int, default=100, help="the large HTTP bodies (default 100)")
    parser.add_argument(
        "--reconnect",
        type=float,
        default=0.05,
        help="an abuser's pause before it connects again (default 0.05 s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chargeflow.bench.abuse_load import MIB, run_abuse

    if not (0 <= args.abusers <= 50 and 1 <= args.stations <= 200 and 1.0 <= args.seconds <= 120.0):
        print("chargeflow bench abuse: --abusers 0..50, --stations 1..200, --seconds 1..120", file=sys.stderr)
        return 2
    result = event_loop.run(
        run_abuse(
            args.abusers,
            args.frame_bytes,
            args.stations,
            args.seconds,
            args.body_mib * MIB,
            timeout_s=args.seconds + 60.0,
            reconnect_s=args.reconnect,
        )
    )
    figures = result.summary()
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    bodies = ", ".join(
        f"{h['body_mib']} MiB {'chunked' if h['chunked'] else 'declared'}: {h['status']} after "
        f"{h['sent_before_answer_kib']} KiB in {h['answer_s']} s"
        for h in figures["http_large_bodies"]
    )
    print(
        f"server RSS {figures['server_rss_before_mib']} MiB before, {figures['server_rss_max_mib']} at most, "
        f"{figures['server_rss_after_mib']} after; server CPU {figures['server_cpu_s']} s in "
        f"{figures['attack_s']} s\n"
        f"normal stations: {figures['normal_answers']} answers, {figures['normal_errors']} errors, "
        f"p50 {figures['normal_ms_p50']} ms, p99 {figures['normal_ms_p99']} ms, "
        f"max {figures['normal_ms_max']} ms\n"
        f"abusers: {figures['abusive_frames_sent']} frames sent on {figures['abusive_connections']} "
        f"connections ({figures['abuser_reconnect_s']} s between them), {figures['abusive_closed_1009']} "
        "closed with 1009 (message too big)\n"
        f"large bodies: {bodies}"
    )
    return 0
