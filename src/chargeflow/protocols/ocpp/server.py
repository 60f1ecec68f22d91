"""The OCPP websocket endpoint ``ws://HOST:PORT/{station_id}``: version negotiation, Basic auth, registry.

One endpoint for every protocol generation: the subprotocol the station offers picks the handlers. A
per-station policy may narrow the versions and relax validation for a station's known quirks.

Security profiles (OCPP 2.0.1 part 2, A00; the 1.6 security whitepaper): 1, plain websocket with HTTP Basic
auth; 2, the same inside TLS (``wss://``, TLS 1.2 or newer) with the server's certificate; 3, TLS in which
the station proves who it is with a client certificate signed by the configured CA, whose common name must
be the station's id, and no password.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import ipaddress
import logging
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from chargeflow.csm.throttle import Admission, Budget, FailureBudget, may_replace
from chargeflow.protocols.ocpp.budgets import OcppBudgets, TokenBucket
from chargeflow.protocols.ocpp.connection import ConnectionOptions, Handler, StationConnection
from chargeflow.protocols.ocpp.frames import OcppVersion
from chargeflow.protocols.ocpp.schemas import SchemaRegistry

log = logging.getLogger(__name__)

PREFERENCE = (OcppVersion.V21, OcppVersion.V201, OcppVersion.V16)
# The stations table's id column; OCPP 2.0.1 (part 2, A00) asks stations for at most 48 characters.
MAX_STATION_ID_LENGTH = 64
# A station that got its password wrong retries every few seconds to minutes; 10 at once and then one
# per 10 s stops a guesser (an hour of guessing is 360 tries) and costs at most one hash per 10 s per id.
STATION_FAILURES = Budget(burst=10, refill_s=10.0)
ADDRESS_FAILURES = Budget(burst=20, refill_s=5.0)  # a host may front several stations (a gateway, NAT)
LANES_PER_ADDRESS = 4  # password checks in flight at once per client address; the others wait their turn
MAX_TRACKED_STATIONS = 10_000  # message-rate buckets kept; past it, those of stations not connected go


@dataclass(frozen=True, slots=True)
class StationPolicy:
    versions: tuple[OcppVersion, ...] = PREFERENCE
    strict: bool = True


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """``wss://``: security profile 2, or 3 when ``client_ca_file`` is given (client certificates)."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None

    @property
    def profile(self) -> int:
        return 2 if self.client_ca_file is None else 3


def server_ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """TLS 1.2 or newer with the server's certificate; with a client CA, a client certificate is required."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(tls.client_ca_file)
    return context


def common_name(peer_certificate: object) -> str | None:
    """The subject's common name of a certificate as ``SSLSocket.getpeercert()`` gives it."""
    if not isinstance(peer_certificate, dict):
        return None
    for rdn in peer_certificate.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


@dataclass(frozen=True, slots=True)
class OcppServerConfig:
    host: str = "127.0.0.1"
    port: int = 9000
    call_timeout_s: float = 30.0
    handler_timeout_s: float = 30.0
    ping_interval_s: float | None = 60.0
    default_policy: StationPolicy = StationPolicy()
    stations: Mapping[str, StationPolicy] = field(default_factory=dict)
    tls: TlsSettings | None = None
    #: security profile 3: station id → the SHA-256 (hex) its client certificate must have, beyond being
    #: signed by the client CA and naming the station (a certificate pinned in the site file)
    certificate_pins: Mapping[str, str] = field(default_factory=dict)
    #: wrong passwords allowed per station id and per client address before the handshake is refused
    #: with 429 without checking the password (``csm.throttle``)
    failures_per_station: Budget = STATION_FAILURES
    failures_per_address: Budget = ADDRESS_FAILURES
    #: a station with no credentials (known by its id alone) that has spoken within this many seconds
    #: is not displaced by a new connection naming it: the heartbeat interval and some slack
    live_window_s: float = 360.0
    #: reverse proxies (addresses or networks) whose X-Forwarded-For names the station's address
    trusted_proxies: tuple[str, ...] = ()
    budgets: OcppBudgets = field(
        default_factory=OcppBudgets
    )  # what one connection may cost (``protocols.ocpp.budgets``)

    @property
    def scheme(self) -> str:
        return "ws" if self.tls is None else "wss"

    def policy(self, station_id: str) -> StationPolicy:
        return self.stations.get(station_id, self.default_policy)


class StationGate(Protocol):
    """What the server asks the CSM about a connecting station."""

    async def admission(self, station_id: str, password: str | None) -> Admission: ...

    async def admit_certified(self, station_id: str) -> bool: ...

    async def connected(self, station_id: str, ocpp_version: str) -> None: ...


def station_id_of(path: str) -> str:
    """The last path segment, so that ``/ocpp/CS1`` and ``/CS1`` both name station CS1.

    Bytes that are not UTF-8 are kept as lone surrogates, which ``bad_station_id`` refuses.
    """
    return unquote(urlsplit(path).path.rstrip("/").rsplit("/", 1)[-1], errors="surrogateescape")


def bad_station_id(station_id: str) -> str | None:
    """Why the database could not hold ``station_id`` (too long, a NUL or other control character, bytes
    that are not UTF-8), or None when it can."""
    if len(station_id) > MAX_STATION_ID_LENGTH:
        return f"longer than {MAX_STATION_ID_LENGTH} characters"
    if not station_id.isprintable():
        return "holds a control character or bytes that are not UTF-8"
    return None


def offered_versions(headers: Headers) -> list[str]:
    return [
        token.strip() for value in headers.get_all("Sec-WebSocket-Protocol") for token in value.split(",")
    ]


def choose_version(offered: list[str], allowed: tuple[OcppVersion, ...]) -> OcppVersion | None:
    for version in allowed:
        if version.value in offered:
            return version
    return None


def basic_password(headers: Headers, station_id: str) -> str | None:
    """The password of an ``Authorization: Basic`` header whose user is the station; else None."""
    value = headers.get("Authorization")
    if not value or not value.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(value[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return password if user == station_id else None


class OcppServer:
    def __init__(
        self,
        config: OcppServerConfig,
        routes: Mapping[OcppVersion, dict[str, Handler]],
        gate: StationGate,
        new_message_id: Callable[[], str],
    ) -> None:
        self.config = config
        self._routes = routes
        self._gate = gate
        self._new_message_id = new_message_id
        self.schemas = SchemaRegistry()
        self.connections: dict[str, StationConnection] = {}
        self._heard: dict[str, _Heard] = {}  # the transports of ``connections``, with when they last spoke
        # between the handshake and the serving; weak: a handshake that fails later leaves nothing here
        self._admitted: weakref.WeakKeyDictionary[ServerConnection, Admission] = weakref.WeakKeyDictionary()
        self._station_failures = FailureBudget(config.failures_per_station)
        self._address_failures = FailureBudget(config.failures_per_address)
        self._proxies = tuple(ipaddress.ip_network(p, strict=False) for p in config.trusted_proxies)
        self._lanes = _Lanes(LANES_PER_ADDRESS)
        self._verified_from: dict[str, str] = {}  # station id → the address it last proved itself from
        self._buckets: dict[str, TokenBucket] = {}  # a station's message rate, across its reconnections
        self.started = asyncio.Event()
        self.port: int | None = None

    def routes(self, version: OcppVersion) -> dict[str, Handler]:
        return self._routes[version]

    def connection(self, station_id: str) -> StationConnection | None:
        return self.connections.get(station_id)

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        station_id = station_id_of(request.path)
        if not station_id:
            return ws.respond(HTTPStatus.NOT_FOUND, "connect to /{station_id}\n")
        if (why := bad_station_id(station_id)) is not None:
            log.warning("refused a station id that %s: %r", why, station_id[:MAX_STATION_ID_LENGTH])
            return ws.respond(HTTPStatus.BAD_REQUEST, f"the station id {why}\n")
        offered = offered_versions(request.headers)
        if choose_version(offered, self.config.policy(station_id).versions) is None:
            log.warning(
                "refused %s: offered subprotocols %s, none of %s",
                station_id,
                offered or "none",
                [v.value for v in self.config.policy(station_id).versions],
            )
            return ws.respond(HTTPStatus.BAD_REQUEST, "no supported OCPP subprotocol offered\n")
        if self.config.tls is not None and self.config.tls.client_ca_file is not None:
            return await self._check_certificate(ws, station_id)
        address = client_address(_address(ws), request.headers.get("X-Forwarded-For"), self._proxies)
        return await self._check_password(
            ws, station_id, basic_password(request.headers, station_id), address
        )

    async def _check_password(
        self, ws: ServerConnection, station_id: str, password: str | None, address: str
    ) -> Response | None:
        """Security profile 1. Wrong passwords are budgeted per station id and per client address; over
        either budget the handshake is refused with 429 before any hash is computed. The address a
        station last proved itself from is spared its station's budget, so that whoever spends that
        budget does not keep the real station out."""
        now = time.monotonic()
        spare_station = self._verified_from.get(station_id) == address
        wait = self._address_failures.retry_after_s(address, now)
        if wait is None and not spare_station:
            wait = self._station_failures.retry_after_s(station_id, now)
        if wait is not None:
            return self._too_many(ws, station_id, address)
        async with self._lanes.one_of_few(address):
            admission = await self._checked(station_id, password, address, spare_station)
        if admission is None:
            return self._too_many(ws, station_id, address)
        if admission is Admission.REFUSED:
            log.warning("refused %s: unknown station or wrong password", station_id)
            response = ws.respond(HTTPStatus.UNAUTHORIZED, "unknown station or wrong password\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="chargeflow", charset="UTF-8"'
            return response
        if admission in (Admission.VERIFIED, Admission.REGISTERED):
            self._verified_from[station_id] = address
        return self._admit(ws, station_id, admission)

    async def _checked(
        self, station_id: str, password: str | None, address: str, spare_station: bool
    ) -> Admission | None:
        """The check itself, at most ``LANES_PER_ADDRESS`` at a time per address (``_lanes``); None if a
        budget was spent while this attempt waited its turn.

        Concurrent guesses must not all pass the budgets before the first failure is counted: an
        attempt is counted against its station before the check and taken back if right (a station
        rarely connects twice at once), and the few lanes per address bound the attempts in flight
        from one host without refusing the many stations behind a gateway that reconnect together
        (they wait their turn: a check takes tens of ms)."""
        now = time.monotonic()
        if self._address_failures.retry_after_s(address, now) is not None or (
            not spare_station and self._station_failures.retry_after_s(station_id, now) is not None
        ):
            return None
        if not spare_station:
            self._station_failures.failed(station_id, now)
        admission = await self._gate.admission(station_id, password)
        now = time.monotonic()
        if admission is not Admission.REFUSED and not spare_station:
            self._station_failures.refund(station_id, now)
        if admission in (Admission.REFUSED, Admission.REGISTERED):  # a new id is a hash and a row too
            self._address_failures.failed(address, now)
        return admission

    def _too_many(self, ws: ServerConnection, station_id: str, address: str) -> Response:
        now = time.monotonic()
        wait = max(
            self._address_failures.retry_after_s(address, now) or 1,
            self._station_failures.retry_after_s(station_id, now) or 1,
        )
        log.warning("refused %s from %s: too many wrong passwords, %d s to wait", station_id, address, wait)
        response = ws.respond(HTTPStatus.TOO_MANY_REQUESTS, "too many failed attempts\n")
        response.headers["Retry-After"] = str(wait)
        return response

    def _admit(self, ws: ServerConnection, station_id: str, admission: Admission) -> Response | None:
        """A station has one connection: may this one take the place of the one it has?"""
        heard = self._heard.get(station_id)
        if heard is not None:
            quiet_s = time.monotonic() - heard.last_heard
            if not may_replace(admission, quiet_s, self.config.live_window_s):
                log.warning(
                    "refused %s from %s: connected already and heard from %.0f s ago, and the newcomer "
                    "proved nothing",
                    station_id,
                    _address(ws),
                    quiet_s,
                )
                return ws.respond(HTTPStatus.CONFLICT, "this station is connected already\n")
        self._admitted[ws] = admission
        return None

    async def _check_certificate(self, ws: ServerConnection, station_id: str) -> Response | None:
        """Security profile 3: the TLS handshake checked the certificate's signature; here its name."""
        name = common_name(ws.transport.get_extra_info("peercert"))
        if name != station_id:
            log.warning("refused %s: its client certificate names %r", station_id, name)
            return ws.respond(HTTPStatus.UNAUTHORIZED, "the client certificate is not this station's\n")
        pin = self.config.certificate_pins.get(station_id)
        if pin is not None:
            ssl_object = ws.transport.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            if der is None or hashlib.sha256(der).hexdigest() != pin:
                log.warning("refused %s: its client certificate is not the one pinned for it", station_id)
                return ws.respond(HTTPStatus.UNAUTHORIZED, "the client certificate is not this station's\n")
        if not await self._gate.admit_certified(station_id):
            log.warning("refused %s: unknown station", station_id)
            return ws.respond(HTTPStatus.UNAUTHORIZED, "unknown station\n")
        return self._admit(ws, station_id, Admission.VERIFIED)

    def _select_subprotocol(self, ws: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        assert ws.request is not None
        policy = self.config.policy(station_id_of(ws.request.path))
        version = choose_version(list(offered), policy.versions)
        return Subprotocol(version.value) if version else None

    async def _serve_station(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        assert ws.subprotocol is not None
        station_id = station_id_of(ws.request.path)
        version = OcppVersion(ws.subprotocol)
        policy = self.config.policy(station_id)
        admission = self._admitted.pop(ws, Admission.REFUSED)
        previous_heard = self._heard.get(station_id)
        if previous_heard is not None and not may_replace(
            admission, time.monotonic() - previous_heard.last_heard, self.config.live_window_s
        ):  # another connection took the place between this one's handshake and now
            await ws.close(1008, "this station is connected already")
            return
        heard = _Heard(ws)
        connection = StationConnection(
            station_id,
            version,
            heard,
            self._routes[version],
            self.schemas,
            self._new_message_id,
            ConnectionOptions(
                strict=policy.strict,
                call_timeout_s=self.config.call_timeout_s,
                handler_timeout_s=self.config.handler_timeout_s,
                budgets=self.config.budgets,
            ),
            self._bucket_of(station_id),
        )
        previous = self.connections.get(station_id)
        self.connections[station_id] = connection
        self._heard[station_id] = heard
        if previous is not None:
            # A station has one connection: the newer one wins (the older is often half-open).
            log.info("%s reconnected; the older connection is closed", station_id)
            await previous.close("replaced by a newer connection of the same station")
        log.info("%s connected with %s", station_id, version.value)
        try:
            await self._gate.connected(station_id, version.value)
            await connection.run()
            if ws.close_code == CloseCode.MESSAGE_TOO_BIG:
                log.warning(
                    "%s sent a message over %d bytes: connection closed (1009)",
                    station_id,
                    self.config.budgets.max_frame_bytes,
                )
        finally:
            if self.connections.get(station_id) is connection:
                del self.connections[station_id]
                del self._heard[station_id]
            log.info("%s disconnected", station_id)

    def _bucket_of(self, station_id: str) -> TokenBucket:
        """The station's rate budget, the same across its connections: reconnecting does not refill it."""
        bucket = self._buckets.get(station_id)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_STATIONS:
                self._buckets = {s: b for s, b in self._buckets.items() if s in self.connections}
            budgets = self.config.budgets
            now = asyncio.get_running_loop().time()
            bucket = self._buckets[station_id] = TokenBucket(budgets.messages_per_s, budgets.burst, now)
        return bucket

    async def serve(self) -> None:
        """Run until cancelled; ``started`` is set and ``port`` known once the socket listens."""
        async with serve(
            self._serve_station,
            self.config.host,
            self.config.port,
            process_request=self._process_request,
            select_subprotocol=self._select_subprotocol,
            ping_interval=self.config.ping_interval_s,
            ping_timeout=self.config.ping_interval_s,
            # a message over max_size is refused as it arrives (close 1009), never buffered whole; past
            # max_queue messages waiting, the socket is not read and TCP pushes back on the station
            max_size=self.config.budgets.max_frame_bytes,
            max_queue=self.config.budgets.max_queued_frames,
            ssl=None if self.config.tls is None else server_ssl_context(self.config.tls),
        ) as server:
            self._bound(server)
            await server.serve_forever()

    def _bound(self, server: Server) -> None:
        self.port = next(iter(server.sockets)).getsockname()[1]
        self.started.set()
        log.info(
            "OCPP endpoint listening on %s://%s:%s/{station_id}",
            self.config.scheme,
            self.config.host,
            self.port,
        )


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(peer: str, forwarded_for: str | None, proxies: Sequence[Network]) -> str:
    """Who connects: the socket's peer, or behind trusted proxies the last address in X-Forwarded-For
    that is not one of them (what the first proxy appended; the client's own entries before it prove
    nothing)."""

    def trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in proxies)

    if not proxies or not trusted(peer) or not forwarded_for:
        return peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        if not trusted(hop):
            return hop or peer
    return peer


def _address(ws: ServerConnection) -> str:
    peer = ws.remote_address
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)


class _Lanes:
    """A few lanes per key: ``one_of_few(key)`` waits for a free one; keys with nobody are forgotten."""

    def __init__(self, lanes: int) -> None:
        self._lanes = lanes
        self._keys: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def one_of_few(self, key: str) -> AsyncIterator[None]:
        lane, users = self._keys.setdefault(key, (asyncio.Semaphore(self._lanes), [0]))
        users[0] += 1
        try:
            async with lane:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._keys[key]


class _Heard:
    """A station's websocket that notes when the station last sent a message."""

    def __init__(self, ws: ServerConnection) -> None:
        self._ws = ws
        self.last_heard = time.monotonic()

    async def send(self, message: str) -> None:
        await self._ws.send(message)

    async def recv(self) -> str | bytes:
        message = await self._ws.recv()
        self.last_heard = time.monotonic()
        return message

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.close(code, reason)
