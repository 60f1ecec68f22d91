"""``chargeflow tariff price``: price an OCPI CDR under an OCPI tariff and print the totals as JSON.

The file reading and printing live here; the rules are in the pure modules ``billing.schema`` and
``billing.pricing``.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chargeflow.billing.pricing import price_session
from chargeflow.billing.schema import (
    BillingInputError,
    lines_json,
    parse_cdr_usage,
    parse_tariff,
    session_cost_json,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tariff = sub.add_parser("tariff", help="OCPI 2.2.1 tariffs", description="Work with OCPI 2.2.1 tariffs.")
    actions = tariff.add_subparsers(dest="tariff_action", metavar="ACTION", required=True)
    price = actions.add_parser(
        "price",
        help="price a CDR's charging periods under a tariff",
        description="Price the charging_periods of an OCPI CDR under an OCPI tariff; prints the totals"
        " as JSON (money as exact decimal strings, energy in kWh, times in hours).",
    )
    price.add_argument("--tariff", type=Path, required=True, help="OCPI Tariff object (JSON file)")
    price.add_argument("--cdr", type=Path, required=True, help="OCPI CDR object (JSON file)")
    price.add_argument(
        "--timezone",
        default="UTC",
        help="IANA time zone of the site, for time-of-day and date restrictions (default: UTC)",
    )
    price.add_argument(
        "--lines",
        action="store_true",
        help="add the priced lines (period, element, used, billed, cost) as an audit trail",
    )
    price.set_defaults(handler=run_price)


def run_price(args: argparse.Namespace) -> int:
    try:
        tz = _zone(args.timezone)
        tariff = parse_tariff(_read_json(args.tariff), str(args.tariff))
        usage = parse_cdr_usage(_read_json(args.cdr), str(args.cdr))
    except BillingInputError as err:
        print(f"chargeflow tariff price: {err}", file=sys.stderr)
        return 1
    cost = price_session(tariff, usage, tz)
    out = session_cost_json(cost)
    if args.lines:
        out["lines"] = lines_json(cost)
    print(json.dumps(out, indent=2))
    return 0


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BillingInputError(
            f"--timezone: unknown time zone {name!r} (expected e.g. Europe/Vienna)"
        ) from None


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise BillingInputError(f"{path}: cannot read the file ({err.strerror})") from None
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as err:
        raise BillingInputError(f"{path}: not valid JSON: {err}") from None
