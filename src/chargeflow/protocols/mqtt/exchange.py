"""The CSM↔EMS exchange over MQTT, so that the EMS role can be taken by another vendor's system.

Topics: ``{prefix}/{site_id}/demand`` (CSM → EMS) and ``{prefix}/{site_id}/grant`` (EMS → CSM), JSON in
the form of ``chargeflow.exchange``, QoS 1, retained, so that a side that (re)connects reads the other's
last word at once — and judges it by its validity window, as it judges every message. A malformed message
is logged and dropped; it never replaces a good one. A lost broker is connected to again, with backoff; while
it is away, publishes are dropped (``MqttExchange``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiomqtt

from chargeflow.exchange import (
    ExchangeError,
    Json,
    PowerDemand,
    PowerGrant,
    demand_from_json,
    demand_to_json,
    grant_from_json,
    grant_to_json,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    prefix: str = "chargeflow"
    timeout_s: float = 10.0
    #: a publish not acknowledged by then is dropped, so that a step never waits long on a broker that went
    #: away without its socket telling (the message is retained, the next step's replaces it anyway)
    publish_timeout_s: float = 2.0
    #: after a lost connection, the first wait before connecting again; doubled on each failure, up to …
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 2.0


def settings_from_url(url: str) -> MqttSettings:
    """``mqtt://HOST[:PORT][/PREFIX]`` as settings; ValueError naming what is wrong."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"an MQTT broker is given as mqtt://HOST[:PORT][/PREFIX], not {url!r}")
    try:
        port = parts.port or 1883
    except ValueError:
        raise ValueError(f"the port of {url!r} is not a number from 1 to 65535") from None
    prefix = parts.path.strip("/") or MqttSettings().prefix
    return MqttSettings(host=parts.hostname, port=port, prefix=prefix)


class MqttExchange:
    """Publishes this side's messages and keeps the latest of the other side's.

    The connection is kept: when the broker goes away the exchange connects again, with a backoff from
    ``reconnect_min_s`` to ``reconnect_max_s``, and subscribes again (the retained messages bring the other
    side's last word at once). While the broker is away a publish is dropped at once rather than raised or
    waited on: the outage is logged once, when it begins, and once when it ends. Meanwhile each side
    judges the other's last message by its validity window as always — the CSM's stations go to their safe
    limit when its last grant runs out, and come back with the next grant.
    """

    def __init__(self, client: aiomqtt.Client | None, settings: MqttSettings) -> None:
        self._client = client  # None while the broker is away
        self._settings = settings
        self._demand: dict[str, PowerDemand] = {}
        self._grant: dict[str, PowerGrant] = {}
        self._down_since: float | None = None  # the loop's time the outage began
        self._dropped_in_outage = 0
        self.received = 0
        self.rejected = 0
        self.dropped = 0  # publishes dropped while the broker was away
        self.outages = 0

    @property
    def connected(self) -> bool:
        """Connected to the broker, as far as this side knows."""
        return self._client is not None and self._down_since is None

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, settings: MqttSettings, site_id: str) -> AsyncIterator[MqttExchange]:
        """Connect, subscribe to the site's topics and listen until the context ends, connecting again
        whenever the connection is lost. The first connection must succeed (``aiomqtt.MqttError``
        otherwise), so that a wrong address fails the start rather than every step."""
        exchange = cls(None, settings)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        keeper = asyncio.create_task(exchange._keep(site_id, ready), name=f"mqtt-exchange-{site_id}")
        try:
            await ready
            yield exchange
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _keep(self, site_id: str, ready: asyncio.Future[None]) -> None:
        """Connect, subscribe and listen; after a loss, wait and do it again, until cancelled."""
        s = self._settings
        delay = s.reconnect_min_s
        while True:
            try:
                async with aiomqtt.Client(s.host, s.port, timeout=s.timeout_s) as client:
                    await client.subscribe(f"{s.prefix}/{site_id}/+", qos=1)
                    self._client = client
                    delay = s.reconnect_min_s
                    self._back()
                    if not ready.done():
                        ready.set_result(None)
                    await self._listen()
                    raise aiomqtt.MqttError("the broker ended the message stream")
            except (aiomqtt.MqttError, OSError) as err:
                self._client = None
                if not ready.done():
                    ready.set_exception(err)
                    return
                self._lost(err)
            log.debug("exchange: connecting to %s:%d again in %.1f s", s.host, s.port, delay)
            await asyncio.sleep(delay)
            delay = min(2 * delay, s.reconnect_max_s)

    def _lost(self, err: Exception) -> None:
        if self._down_since is not None:
            return  # logged when the outage began
        self._down_since = asyncio.get_running_loop().time()
        self._dropped_in_outage = 0
        self.outages += 1
        s = self._settings
        log.warning(
            "exchange: lost the MQTT broker at %s:%d (%s); this side's messages are dropped and the "
            "connection is tried again until it is back",
            s.host,
            s.port,
            str(err) or type(err).__name__,
        )

    def _back(self) -> None:
        if self._down_since is None:
            return
        s = self._settings
        log.info(
            "exchange: the MQTT broker at %s:%d is back after %.1f s (%d messages dropped meanwhile)",
            s.host,
            s.port,
            asyncio.get_running_loop().time() - self._down_since,
            self._dropped_in_outage,
        )
        self._down_since = None

    def _topic(self, site_id: str, kind: str) -> str:
        return f"{self._settings.prefix}/{site_id}/{kind}"

    async def _publish(self, topic: str, message: Json) -> None:
        client = self._client
        if client is not None:
            try:
                await asyncio.wait_for(
                    client.publish(topic, json.dumps(message), qos=1, retain=True),
                    self._settings.publish_timeout_s,
                )
            except (aiomqtt.MqttError, TimeoutError) as err:
                self._lost(err)
            else:
                self._back()  # a publish that went through after one that timed out
                return
        self.dropped += 1
        self._dropped_in_outage += 1

    async def publish_demand(self, demand: PowerDemand) -> None:
        await self._publish(self._topic(demand.site_id, "demand"), demand_to_json(demand))

    async def publish_grant(self, grant: PowerGrant) -> None:
        await self._publish(self._topic(grant.site_id, "grant"), grant_to_json(grant))

    def latest_demand(self, site_id: str) -> PowerDemand | None:
        return self._demand.get(site_id)

    def latest_grant(self, site_id: str) -> PowerGrant | None:
        return self._grant.get(site_id)

    async def _listen(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            kind = str(message.topic).rsplit("/", 1)[-1]
            try:
                raw = message.payload
                data = json.loads(raw if isinstance(raw, str | bytes | bytearray) else b"")
                if kind == "demand":
                    demand = demand_from_json(data)
                    self._demand[demand.site_id] = demand
                elif kind == "grant":
                    grant = grant_from_json(data)
                    self._grant[grant.site_id] = grant
                else:
                    continue
                self.received += 1
            except (ExchangeError, ValueError) as err:
                self.rejected += 1
                log.warning("exchange: dropped a malformed %s message on %s: %s", kind, message.topic, err)
