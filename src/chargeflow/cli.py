"""The ``chargeflow`` command. Each subcommand lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from chargeflow import __version__

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


# Each command: the modules that register it (``register(subparsers)``) and its line in ``--help``.
# Only the modules of the command asked for are imported, so ``chargeflow tariff`` does not wait for the
# web server, the database layer and the simulator to load.
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "allocate": (("allocate",), "one control step: read a site state (JSON), print the limits"),
    "demo": (("demo",), "the whole system on a simulated workplace site (dashboard in a browser)"),
    "serve": (("serve",), "run the CSM, or with --site the whole site: OCPP, smart charging, EMS, web"),
    "ems": (("ems",), "run a site's EMS alone, reached over MQTT by serve --ems"),
    "simulate": (("simulate",), "a site over days of real sessions, headless; metrics, timeline, plot"),
    "tariff": (("tariff",), "price a charge detail record under an OCPI tariff"),
    "devices": (("devices",), "the device templates a site file can name"),
    "station-password": (("station_password",), "hash a station's password for the site file"),
    "bench": (("bench", "bench_ocpp", "bench_fuzz", "bench_abuse"), "reproducible benchmarks"),
}


def _registrations(modules: Sequence[str]) -> list[Register]:
    registers: list[Register] = []
    for name in modules:
        module = importlib.import_module(f"chargeflow.commands.{name}")
        registers.append(module.register)
    return registers


def _command_of(argv: Sequence[str]) -> str | None:
    """The command named on the command line (its first word that is not an option), if any."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; given the command line, only what its command needs (others listed by name)."""
    parser = argparse.ArgumentParser(
        prog="chargeflow",
        description="Smart EV charging: Charging Station Manager, site EMS, accounting (TF-EVC).",
    )
    parser.add_argument("--version", action="version", version=f"chargeflow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = None if argv is None else _command_of(argv)
    if argv is not None and chosen is None:  # no command: list them without loading them
        for name, (_, summary) in COMMANDS.items():
            sub.add_parser(name, help=summary)
        return parser
    names = list(COMMANDS) if chosen is None else [chosen]
    for register in _registrations([module for name in names for module in COMMANDS[name][0]]):
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words)
    args = parser.parse_args(words)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
