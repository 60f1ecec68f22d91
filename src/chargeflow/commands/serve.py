"""``chargeflow serve``: the OCPP endpoint and the REST API, with nothing required on the command line."""

from __future__ import annotations

import argparse
import gc
import hashlib
import ipaddress
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from chargeflow.commands import event_loop
from chargeflow.commands.serve_config import OcppSection, TlsSection, load_serve_file, tls_settings
from chargeflow.protocols.mqtt.exchange import settings_from_url
from chargeflow.protocols.ocpp.budgets import OcppBudgets
from chargeflow.protocols.ocpp.server import TlsSettings
from chargeflow.runtime.app import Budgets, CsmNode, ServeSettings
from chargeflow.runtime.serve import serve
from chargeflow.site.config import ConfigError
from chargeflow.store.database import DEFAULT_URL
from chargeflow.web.limits import HttpBudgets

LINK_KEY_ITERATIONS = 600_000  # once per start: about 0.15 s

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the CSM: OCPP websocket endpoint and REST API",
        description=(
            "Run the Charging Station Manager; with --site, the whole site: smart charging within its fuses "
            "and grid limit, the EMS, billing, the dashboard and the drivers' pages. Database: "
            "CHARGEFLOW_DATABASE_URL (default: SQLite file chargeflow.db here). API token: "
            "CHARGEFLOW_ADMIN_TOKEN; dashboard password: CHARGEFLOW_OWNER_PASSWORD (each generated and "
            "printed when unset); key of the drivers' session links: CHARGEFLOW_LINK_KEY (default: from "
            "the owner password)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address for both listeners (default 127.0.0.1)")
    parser.add_argument("--ocpp-port", type=int, default=9000, help="OCPP websocket port (default 9000)")
    parser.add_argument("--http-port", type=int, default=8000, help="REST API port (default 8000)")
    parser.add_argument(
        "--site",
        type=Path,
        default=None,
        metavar="FILE",
        help="site file: its stations, fuses, grid limit, meters and tariffs; runs the whole site",
    )
    parser.add_argument(
        "--step", type=float, default=10.0, metavar="S", help="control step with --site, s (default 10)"
    )
    parser.add_argument(
        "--strategy",
        choices=("equal", "edf", "llf", "priority"),
        default="edf",
        help="how the grant is split between the sessions, with --site (default edf; docs/allocate.md)",
    )
    parser.add_argument(
        "--ems",
        default=None,
        metavar="URL",
        help="mqtt://HOST[:PORT][/PREFIX]: use the EMS running apart (chargeflow ems) instead of our own",
    )
    parser.add_argument(
        "--public-url",
        default=None,
        metavar="URL",
        help="the address drivers reach the web pages at, for QR codes (default: as requested)",
    )
    parser.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="a reverse proxy (address or network, repeatable) whose X-Forwarded-For names the client, "
        "for the web and the OCPP listener; default none: the header is ignored",
    )
    parser.add_argument(
        "--auto-register",
        action="store_true",
        help="accept unknown stations and register them on first contact",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="YAML file: OCPP options, per-station overrides",
    )
    limits = parser.add_argument_group("budgets", "what one station or request may cost (docs/security.md)")
    limits.add_argument(
        "--max-frame-kib",
        type=int,
        default=OcppBudgets().max_frame_bytes // 1024,
        metavar="KIB",
        help="largest OCPP message taken; a bigger one closes the connection with 1009 (default %(default)s)",
    )
    limits.add_argument(
        "--max-body-kib",
        type=int,
        default=HttpBudgets().max_body_bytes // 1024,
        metavar="KIB",
        help="largest HTTP request body taken; a bigger one gets 413 (default %(default)s)",
    )
    limits.add_argument(
        "--station-messages-per-s",
        type=float,
        default=OcppBudgets().messages_per_s,
        metavar="N",
        help="a station's messages beyond this rate are delayed (default %(default)s)",
    )
    tls = parser.add_argument_group(
        "TLS (wss://)", "security profile 2 with --tls-cert and --tls-key; profile 3 adds --tls-client-ca"
    )
    tls.add_argument(
        "--tls-cert", type=Path, default=None, metavar="PEM", help="the server's certificate chain"
    )
    tls.add_argument("--tls-key", type=Path, default=None, metavar="PEM", help="the server's private key")
    tls.add_argument(
        "--tls-client-ca",
        type=Path,
        default=None,
        metavar="PEM",
        help="CA of the stations' client certificates (profile 3: the certificate's CN is the station id)",
    )
    parser.set_defaults(handler=run)


def tls_from(args: argparse.Namespace, section: TlsSection | None, config: Path | None) -> TlsSettings | None:
    """The command line's TLS files, else the config file's; both or neither of cert and key."""
    if args.tls_cert is None and args.tls_key is None and args.tls_client_ca is None:
        return None if section is None or config is None else section.settings(config.parent)
    if args.tls_cert is None or args.tls_key is None:
        raise ConfigError("--tls-cert and --tls-key go together (--tls-client-ca needs both)")
    options = ("--tls-cert", "--tls-key", "--tls-client-ca")
    return tls_settings(args.tls_cert, args.tls_key, args.tls_client_ca, options)


def settings_from(args: argparse.Namespace, environ: dict[str, str]) -> tuple[ServeSettings, bool]:
    """The settings, and whether the admin token was generated (and so must be shown)."""
    token = environ.get("CHARGEFLOW_ADMIN_TOKEN", "")
    generated = not token
    ocpp = load_serve_file(args.config).ocpp if args.config is not None else OcppSection()
    tls = tls_from(args, ocpp.tls, args.config)
    if not 1.0 <= args.step <= 300.0:
        raise ConfigError(f"--step must be between 1 and 300 s, not {args.step}")
    password = environ.get("CHARGEFLOW_OWNER_PASSWORD", "")
    if args.site is not None and not password:
        password = secrets.token_urlsafe(12)
        print(f"owner password (set CHARGEFLOW_OWNER_PASSWORD to choose one): {password}", flush=True)
    link_key = environ.get("CHARGEFLOW_LINK_KEY", "")
    settings = ServeSettings(
        host=args.host,
        ocpp_port=args.ocpp_port,
        http_port=args.http_port,
        database_url=environ.get("CHARGEFLOW_DATABASE_URL", DEFAULT_URL),
        admin_token=token or secrets.token_urlsafe(24),
        site_file=args.site,
        auto_register=args.auto_register or ocpp.auto_register,
        heartbeat_interval_s=ocpp.heartbeat_interval_s,
        operation_timeout_s=ocpp.call_timeout_s,
        default_policy=ocpp.default_policy(),
        station_policies=ocpp.policies(),
        tls=tls,
        step_s=args.step,
        strategy=args.strategy,
        ems_url=_ems_url(args.ems, args.site),
        owner_password=password,
        public_url=args.public_url,
        trusted_proxies=trusted_proxies(args.trusted_proxy),
        link_key=links_key(link_key, environ.get("CHARGEFLOW_OWNER_PASSWORD", "")),
        budgets=budgets_from(args),
    )
    return settings, generated


def budgets_from(args: argparse.Namespace) -> Budgets:
    try:
        ocpp = OcppBudgets(
            max_frame_bytes=args.max_frame_kib * 1024, messages_per_s=args.station_messages_per_s
        )
        return Budgets(ocpp, HttpBudgets(max_body_bytes=args.max_body_kib * 1024))
    except ValueError as err:
        raise ConfigError(f"--max-frame-kib, --max-body-kib, --station-messages-per-s: {err}") from None


def links_key(link_key: str, owner_password: str) -> bytes | None:
    """The key of the drivers' session links: from CHARGEFLOW_LINK_KEY, else from the owner's password
    (when it is set, not generated), so that the links a server gave out still open their sessions
    after a restart; None (a new random key, links end with the process) without either.

    Every driver holds a link, an HMAC under this key of a message they can guess: a key made from a
    password by one fast hash would let any driver test guesses of the owner's password offline at
    billions a second. So it is stretched like a stored password (PBKDF2, ``LINK_KEY_ITERATIONS``);
    a random CHARGEFLOW_LINK_KEY is better still."""
    if link_key:
        return hashlib.sha256(b"chargeflow-links:" + link_key.encode()).digest()
    if owner_password:
        salt = b"chargeflow-links-from-owner-password"
        return hashlib.pbkdf2_hmac("sha256", owner_password.encode(), salt, LINK_KEY_ITERATIONS)
    return None


def trusted_proxies(values: list[str]) -> tuple[str, ...]:
    """The ``--trusted-proxy`` values, each an IP address or network."""
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ConfigError(f"--trusted-proxy: {value!r} is not an IP address or network") from None
    return tuple(values)


def _ems_url(url: str | None, site: Path | None) -> str | None:
    if url is None:
        return None
    if site is None:
        raise ConfigError("--ems needs --site: without a site there is no smart charging to grant for")
    try:
        settings_from_url(url)
    except ValueError as err:
        raise ConfigError(f"--ems: {err}") from None
    return url


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings, generated = settings_from(args, dict(os.environ))
    except ConfigError as err:
        print(f"chargeflow serve: {err}", file=sys.stderr)
        return 2

    def ready(node: CsmNode, ocpp_port: int, http_port: int) -> None:
        # What start-up made (compiled schemas, the site, modules) lives as long as the process: kept out
        # of the collector's full passes, which then scan only what serving makes. Under a flood of
        # connections those passes stalled every station: normal p99 135-273 ms without, 34-76 ms with
        # (docs/security.md, chargeflow bench abuse).
        gc.freeze()
        scheme, profile = ("ws", 1) if settings.tls is None else ("wss", settings.tls.profile)
        print(
            f"OCPP   {scheme}://{settings.host}:{ocpp_port}/{{station_id}}  "
            f"(ocpp2.1, ocpp2.0.1, ocpp1.6; security profile {profile})",
            flush=True,
        )
        print(f"API    http://{settings.host}:{http_port}/api   OpenAPI: /openapi.json", flush=True)
        if settings.site_file is None:
            print("site   none: a plain CSM, no smart charging (give --site FILE to run a site)", flush=True)
        else:
            print(
                f"site   {settings.site_file}: control every {settings.step_s:g} s, "
                f"EMS {settings.ems_url or 'in this process'}; "
                f"dashboard http://{settings.host}:{http_port}/dashboard",
                flush=True,
            )
        if generated:
            print(
                f"admin token (set CHARGEFLOW_ADMIN_TOKEN to choose one): {settings.admin_token}", flush=True
            )

    try:
        event_loop.run(serve(settings, ready))
    except KeyboardInterrupt:
        return 0
    except (OSError, ConfigError) as exc:
        print(f"chargeflow serve: {exc}", file=sys.stderr)
        return 1
    except ExceptionGroup as group:  # a listener failed inside the server's TaskGroup
        failed, _ = group.split((OSError, ConfigError))
        if failed is None:
            raise
        for error in failed.exceptions:
            print(f"chargeflow serve: {error}", file=sys.stderr)
        return 1
    return 0
