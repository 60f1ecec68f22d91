"""``chargeflow ems``: the site's EMS as its own process, talking to the CSM over MQTT only."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from chargeflow.commands import event_loop

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "ems",
        help="run the site's EMS alone; the CSM (serve --ems) reaches it over MQTT",
        description=(
            "Run the Energy Management System of a site: every step it reads the site's meters, takes the "
            "CSM's P_needed and P_wished from MQTT and publishes P_granted with its validity."
        ),
    )
    parser.add_argument("--site", type=Path, required=True, metavar="FILE", help="the site file")
    parser.add_argument(
        "--mqtt",
        default="mqtt://127.0.0.1:1883",
        metavar="URL",
        help="mqtt://HOST[:PORT][/PREFIX] (default mqtt://127.0.0.1:1883, prefix chargeflow)",
    )
    parser.add_argument("--step", type=float, default=10.0, metavar="S", help="step, s (default 10)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chargeflow.ems.service import EmsService
    from chargeflow.protocols.mqtt.exchange import settings_from_url
    from chargeflow.runtime.ems import run_ems
    from chargeflow.site.config import ConfigError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        mqtt = settings_from_url(args.mqtt)
        if not 1.0 <= args.step <= 300.0:
            raise ValueError(f"--step must be between 1 and 300 s, not {args.step}")
    except ValueError as err:
        print(f"chargeflow ems: {err}", file=sys.stderr)
        return 2

    def ready(_: EmsService) -> None:
        print(f"EMS    site {args.site}, exchange mqtt://{mqtt.host}:{mqtt.port}/{mqtt.prefix}", flush=True)

    try:
        event_loop.run(run_ems(args.site, mqtt, args.step, ready))
    except KeyboardInterrupt:
        return 0
    except (OSError, ConfigError) as err:
        print(f"chargeflow ems: {err}", file=sys.stderr)
        return 1
    return 0
