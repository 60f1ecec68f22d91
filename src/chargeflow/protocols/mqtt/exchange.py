"""The CSM↔EMS exchange over MQTT, so that the EMS role can be taken by another vendor's system.

Topics: ``{prefix}/{site_id}/demand`` (CSM → EMS) and ``{prefix}/{site_id}/grant`` (EMS → CSM), JSON in
the form of ``chargeflow.exchange``, QoS 1, retained, so that a side that (re)connects reads the other's
last word at once — and judges it by its validity window, as it judges every message. A malformed message
is logged and dropped; it never replaces a good one.
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
    """Publishes this side's messages and keeps the latest of the other side's."""

    def __init__(self, client: aiomqtt.Client, settings: MqttSettings) -> None:
        self._client = client
        self._settings = settings
        self._demand: dict[str, PowerDemand] = {}
        self._grant: dict[str, PowerGrant] = {}
        self.received = 0
        self.rejected = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, settings: MqttSettings, site_id: str) -> AsyncIterator[MqttExchange]:
        """Connect, subscribe to the site's topics and listen until the context ends."""
        async with aiomqtt.Client(settings.host, settings.port, timeout=settings.timeout_s) as client:
            exchange = cls(client, settings)
            await client.subscribe(f"{settings.prefix}/{site_id}/+", qos=1)
            listener = asyncio.create_task(exchange._listen(), name=f"mqtt-exchange-{site_id}")
            try:
                yield exchange
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    def _topic(self, site_id: str, kind: str) -> str:
        return f"{self._settings.prefix}/{site_id}/{kind}"

    async def publish_demand(self, demand: PowerDemand) -> None:
        payload = json.dumps(demand_to_json(demand))
        await self._client.publish(self._topic(demand.site_id, "demand"), payload, qos=1, retain=True)

    async def publish_grant(self, grant: PowerGrant) -> None:
        payload = json.dumps(grant_to_json(grant))
        await self._client.publish(self._topic(grant.site_id, "grant"), payload, qos=1, retain=True)

    def latest_demand(self, site_id: str) -> PowerDemand | None:
        return self._demand.get(site_id)

    def latest_grant(self, site_id: str) -> PowerGrant | None:
        return self._grant.get(site_id)

    async def _listen(self) -> None:
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
