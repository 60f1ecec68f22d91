"""The ``chargeflow`` command. Each subcommand lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from chargeflow import __version__

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _registrations() -> list[Register]:
    """Each subcommand module offers ``register(subparsers)``; add one line here per module."""
    from chargeflow.commands import allocate, bench, bench_ocpp, demo, serve, simulate, tariff

    return [
        allocate.register,
        demo.register,
        serve.register,
        simulate.register,
        tariff.register,
        bench.register,
        bench_ocpp.register,
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chargeflow",
        description="Smart EV charging: Charging Station Manager, site EMS, accounting (TF-EVC).",
    )
    parser.add_argument("--version", action="version", version=f"chargeflow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _registrations():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
