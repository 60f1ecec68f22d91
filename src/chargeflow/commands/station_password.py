"""``chargeflow station-password``: the hash of a station's password, for the site file's ``password_hash``.

The password is read from standard input (one line) or asked for at the terminal, never from the command
line, where other users and the shell's history would see it. OCPP asks for 16 to 40 characters
(1.6 security whitepaper, 2.0.1 A00.FR.205); a shorter one is refused.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys

from chargeflow.csm.passwords import hash_password

MIN_LENGTH = 16
MAX_LENGTH = 40


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = sub.add_parser(
        "station-password",
        help="hash a station's password for the site file (password_hash)",
        description="Print the hash of a station's password (OCPP security profile 1 or 2) for the site "
        "file's password_hash. The password is read from standard input, or asked for at a terminal; "
        "--generate makes one and prints it first.",
    )
    command.add_argument(
        "--generate", action="store_true", help="make a random 24-character password and print it too"
    )
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.generate:
        password = secrets.token_urlsafe(18)  # 24 characters
        print(f"password (set it in the station): {password}", file=sys.stderr)
    elif sys.stdin.isatty():
        password = getpass.getpass("station password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        print(
            f"chargeflow station-password: a station password has {MIN_LENGTH} to {MAX_LENGTH} characters "
            f"(OCPP), this one {len(password)}",
            file=sys.stderr,
        )
        return 1
    print(hash_password(password, secrets.token_bytes(16)))
    return 0
