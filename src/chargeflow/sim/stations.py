"""A simulated charging station that is a real OCPP client: the ``ocpp`` library over ``websockets``.

One station has one connector (EVSE 1) and speaks OCPP 1.6J or 2.0.1 to the CSM. It boots, reports its
connector status, heartbeats on the shared clock, and answers the CSM's calls (``station_handlers``). The
owner plugs EVs in and out and steps the physics: each ``advance`` lets the EV draw under the limit its
charging profiles compose to (``profiles``) and the station's own maximum, by TF-EVC eq. 1.1.1.1
(``ev.draw``); ``send_meter_values`` reports the energy register, power, current per phase in use and,
in 2.0.1, the state of charge.

Time comes from the injected clock (a ``ManualClock`` in simulations), never from the system. The
connection, its tasks and its timeouts are ``ocpp_client``'s.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from chargeflow.clock import Clock
from chargeflow.csm.demand import Preferences
from chargeflow.sim.ev import Draw, EvModel, draw
from chargeflow.sim.ocpp_client import OcppClient, StationError, Timeouts
from chargeflow.sim.profiles import ChargingProfiles, Limit, Reason, RunningTx, Version, profile_of
from chargeflow.sim.readings import meter_value_16, meter_value_201, readings
from chargeflow.sim.station_handlers import CONNECTOR, RemoteStart, handlers_for, iso
from chargeflow.site.model import ChargingPoint
from chargeflow.units import NOMINAL_VOLTAGE_V, grid_phases_of

log = logging.getLogger(__name__)

SUBPROTOCOLS: Final = {Version.V16: "ocpp1.6", Version.V201: "ocpp2.0.1"}
NO_DRAW: Final = Draw(0.0, 0, 0.0, 0.0)


@dataclass(slots=True)
class Transaction:
    id: str  # 1.6: the CSM's integer id as text; 2.0.1: the station's own id
    started_at: datetime
    meter_start_wh: int
    id_token: str
    seq_no: int = 0  # 2.0.1 TransactionEvent sequence

    @property
    def running(self) -> RunningTx:
        return RunningTx(self.id, self.started_at)


@dataclass(frozen=True, slots=True)
class StationOptions:
    voltage_v: float = NOMINAL_VOLTAGE_V
    call_timeout_s: float = 10.0
    open_timeout_s: float = 10.0
    close_timeout_s: float = 5.0
    meter_start_wh: int = 0
    vendor: str = "Chargeflow"
    model: str = "SimulatedStation"


class SimulatedStation:
    def __init__(
        self,
        point: ChargingPoint,
        version: str,
        url: str,
        clock: Clock,
        password: str | None = None,
        options: StationOptions | None = None,
    ) -> None:
        self.point: ChargingPoint = point
        self.version: Version = Version(version)
        self.url = url
        self.clock: Clock = clock
        self.password = password
        self.options: StationOptions = options or StationOptions()
        self.profiles: ChargingProfiles = ChargingProfiles(self.version)
        self.heartbeat_interval_s: int = 300
        self.config: dict[str, str] = {}  # writable settings the CSM changed (1.6 keys, 2.0.1 variables)
        self.booted = False
        self.status = "Available"
        self.ev: EvModel | None = None
        self.soc: float = 0.0
        self.preferences: Preferences | None = None
        self.transaction: Transaction | None = None
        self.pending_remote_start: RemoteStart | None = None
        self.reset_scheduled = False
        self.register_wh = float(self.options.meter_start_wh)
        self.last_draw = NO_DRAW
        self.limit = Limit(point.max_current_a, point.phases, Reason.HARDWARE)
        self._last_exchange: datetime | None = None  # of any message answered by the CSM
        self._message_ids = itertools.count(1)
        self._client = self._new_client()
        self._tx_numbers = itertools.count(1)

    # Observer's view ----------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.point.id

    @property
    def connected(self) -> bool:
        return self._client.connected

    @property
    def plugged(self) -> bool:
        return self.ev is not None

    @property
    def charging(self) -> bool:
        return self.transaction is not None and self.last_draw.current_a > 0

    @property
    def limit_a(self) -> float:
        """The current per phase the station allows now (0 below the minimum it can deliver)."""
        return self.limit.current_a if self.limit.current_a >= self.point.min_current_a else 0.0

    @property
    def current_a(self) -> float:
        return self.last_draw.current_a

    @property
    def energy_register_wh(self) -> int:
        return round(self.register_wh)

    def grid_currents_a(self) -> tuple[float, float, float]:
        """What the EV draws now on grid phases L1, L2, L3 (the station's phase rotation applied)."""
        currents = [0.0, 0.0, 0.0]
        if self.last_draw.phases:
            for phase in grid_phases_of(self.last_draw.phases, self.point.l1_phase):
                currents[phase - 1] = self.last_draw.current_a
        return (currents[0], currents[1], currents[2])

    # Connection ---------------------------------------------------------------------------------

    async def __aenter__(self) -> SimulatedStation:
        try:
            await self.connect()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the websocket, start the receive loop and boot."""
        await self._open()
        await self.boot()

    async def reconnect(self) -> None:
        """Open a new connection after the last one ended, as a station does after a network outage: no
        new boot, a StatusNotification; its transaction, profiles and register carry on."""
        await self.close()
        await self._open()
        await self.send_status()

    def _new_client(self) -> OcppClient:
        o = self.options
        timeouts = Timeouts(o.call_timeout_s, o.open_timeout_s, o.close_timeout_s)
        return OcppClient(
            self.id, SUBPROTOCOLS[self.version], self.url, self.password, timeouts, self._message_ids
        )

    async def _open(self) -> None:
        self._client = self._new_client()
        await self._client.open(handlers_for(self))

    def after_answer(self, follow_up: Callable[[], Awaitable[None]]) -> None:
        """Run ``follow_up`` once the answer to the CALL being handled has been sent."""
        self._client.after_answer(follow_up)

    async def wait_disconnected(self) -> None:
        """Return once the connection has ended (the CSM closed it, or ``close``)."""
        await self._client.wait_disconnected()

    async def close(self) -> None:
        await self._client.close()

    async def call(self, payload: Any) -> Any:
        """One CALL to the CSM; a CALLERROR or no answer in time raises ``StationError``."""
        answer = await self._client.call(payload)
        self._last_exchange = self.clock.now()
        return answer

    # Boot, status, heartbeat --------------------------------------------------------------------

    async def boot(self, reason: str = "PowerUp") -> None:
        if self.version is Version.V16:
            answer = await self.call(
                call16.BootNotification(
                    charge_point_model=self.options.model,
                    charge_point_vendor=self.options.vendor,
                    charge_point_serial_number=self.id,
                )
            )
        else:
            answer = await self.call(
                call201.BootNotification(
                    charging_station={
                        "model": self.options.model,
                        "vendorName": self.options.vendor,
                        "serialNumber": self.id,
                    },
                    reason=reason,
                )
            )
        if answer.status != "Accepted":
            raise StationError(f"{self.id}: boot {answer.status}")
        self.heartbeat_interval_s = int(answer.interval) or self.heartbeat_interval_s
        self.booted = True
        await self.send_status()

    async def send_status(self, status: str | None = None) -> None:
        if status is not None:
            self.status = status
        if self.version is Version.V16:
            await self.call(
                call16.StatusNotification(
                    connector_id=CONNECTOR,
                    error_code="NoError",
                    status=self.status,
                    timestamp=iso(self.clock.now()),
                )
            )
        else:
            await self.call(
                call201.StatusNotification(
                    timestamp=iso(self.clock.now()),
                    connector_status="Available" if self.ev is None else "Occupied",
                    evse_id=CONNECTOR,
                    connector_id=CONNECTOR,
                )
            )

    async def heartbeat(self) -> None:
        await self.call(call16.Heartbeat() if self.version is Version.V16 else call201.Heartbeat())

    async def heartbeat_if_due(self, now: datetime) -> bool:
        """Heartbeat when the CSM has heard nothing for the interval it asked for, on the shared clock
        (1.6 and 2.0.1 define HeartbeatInterval as an interval of inactivity: a station that sends meter
        values needs no heartbeat)."""
        due = self._last_exchange is None or now - self._last_exchange >= timedelta(
            seconds=self.heartbeat_interval_s
        )
        if due:
            await self.heartbeat()
        return due

    # EV sessions --------------------------------------------------------------------------------

    async def plug_in(
        self, ev: EvModel, soc: float, id_token: str, preferences: Preferences | None = None
    ) -> bool:
        """An EV arrives: authorise and start a transaction. Returns whether charging may start.

        A remote start that arrived while the connector was free authorises this EV instead of the
        driver's token. With ``preferences``, a 2.0.1 EV announces its departure and energy need.
        """
        if self.ev is not None:
            raise StationError(f"{self.id}: an EV is already plugged in")
        self.ev, self.soc, self.preferences = ev, soc, preferences
        remote, self.pending_remote_start = self.pending_remote_start, None
        await self.send_status("Preparing")
        if remote is not None:
            await self.start_remote(remote)
        elif self.version is Version.V201 or await self._authorized(id_token):
            await self.start_transaction(id_token)
        return self.transaction is not None

    async def start_remote(self, remote: RemoteStart) -> None:
        """Start the transaction a remote start asked for, under the profile it brought."""
        await self.start_transaction(remote.id_token, "RemoteStart", remote.remote_start_id)
        if remote.profile is not None and self.transaction is not None:
            # The profile of a remote start belongs to the transaction it starts (1.6 §5.11, 2.0.1 F01).
            profile = replace(
                profile_of(self.version, CONNECTOR, remote.profile), transaction_id=self.transaction.id
            )
            verdict = self.profiles.install(profile, self.running_tx())
            if not verdict.accepted:
                log.warning("%s: the remote start's profile was refused: %s", self.id, verdict.reason)

    async def _authorized(self, id_token: str) -> bool:
        answer = await self.call(call16.Authorize(id_tag=id_token))
        return bool(answer.id_tag_info["status"] == "Accepted")

    async def start_transaction(
        self, id_token: str, trigger: str = "Authorized", remote_start_id: int | None = None
    ) -> None:
        now = self.clock.now()
        meter_start = self.energy_register_wh
        if self.version is Version.V16:
            answer = await self.call(
                call16.StartTransaction(
                    connector_id=CONNECTOR, id_tag=id_token, meter_start=meter_start, timestamp=iso(now)
                )
            )
            if answer.id_tag_info["status"] != "Accepted":
                # 1.6 §5.x: a transaction the CSM does not authorise is stopped at once.
                tx = Transaction(str(answer.transaction_id), now, meter_start, id_token)
                self.transaction = tx
                await self.stop_transaction("DeAuthorized")
                return
            self.transaction = Transaction(str(answer.transaction_id), now, meter_start, id_token)
            await self.send_status("Charging")
            return
        tx = Transaction(f"{self.id}-{next(self._tx_numbers)}", now, meter_start, id_token)
        self.transaction = tx
        answer = await self.call(
            call201.TransactionEvent(
                event_type="Started",
                timestamp=iso(now),
                trigger_reason=trigger,
                seq_no=self._next_seq(),
                transaction_info={"transactionId": tx.id, "chargingState": "EVConnected"}
                | ({"remoteStartId": remote_start_id} if remote_start_id is not None else {}),
                meter_value=[self._meter_value_201(now, "Transaction.Begin")],
                evse={"id": CONNECTOR, "connectorId": CONNECTOR},
                id_token={"idToken": id_token, "type": "Central" if trigger == "RemoteStart" else "ISO14443"},
            )
        )
        if (answer.id_token_info or {}).get("status") != "Accepted":
            await self.stop_transaction("DeAuthorized")
            return
        if self.preferences is not None and self.ev is not None:
            await self.notify_charging_needs(self.ev, self.preferences)

    async def notify_charging_needs(self, ev: EvModel, preferences: Preferences) -> str:
        """ISO 15118 through the station: the EV's departure time and energy need (2.0.1 only)."""
        phases = min(ev.charger_phases, self.point.phases)
        answer = await self.call(
            call201.NotifyEVChargingNeeds(
                evse_id=CONNECTOR,
                charging_needs={
                    "requestedEnergyTransfer": "AC_single_phase" if phases == 1 else "AC_three_phase",
                    "departureTime": iso(preferences.departure),
                    "acChargingParameters": {
                        "energyAmount": preferences.needed_wh,
                        "evMinCurrent": round(self.point.min_current_a),
                        "evMaxCurrent": round(ev.charger_max_current_a),
                        "evMaxVoltage": round(self.options.voltage_v * (3**0.5 if phases > 1 else 1)),
                    },
                },
            )
        )
        return str(answer.status)

    def _next_seq(self) -> int:
        assert self.transaction is not None
        seq = self.transaction.seq_no
        self.transaction.seq_no += 1
        return seq

    async def stop_transaction(self, reason: str = "EVDisconnected", trigger: str = "EVDeparted") -> None:
        """End the running transaction with the register's reading as meter stop."""
        tx = self.transaction
        if tx is None:
            return
        now = self.clock.now()
        if self.version is Version.V16:
            await self.call(
                call16.StopTransaction(
                    meter_stop=self.energy_register_wh,
                    timestamp=iso(now),
                    transaction_id=int(tx.id),
                    reason=reason,
                    id_tag=tx.id_token,
                )
            )
        else:
            await self.call(
                call201.TransactionEvent(
                    event_type="Ended",
                    timestamp=iso(now),
                    trigger_reason=trigger,
                    seq_no=self._next_seq(),
                    transaction_info={"transactionId": tx.id, "stoppedReason": reason},
                    meter_value=[self._meter_value_201(now, "Transaction.End")],
                    evse={"id": CONNECTOR, "connectorId": CONNECTOR},
                )
            )
        self.transaction = None
        self.last_draw = NO_DRAW
        self.profiles.end_transaction(tx.id)
        if self.version is Version.V16 and self.ev is not None:
            await self.send_status("Finishing")

    async def unplug(self) -> None:
        """The EV leaves: stop its transaction and free the connector."""
        await self.stop_transaction()
        self.ev, self.preferences = None, None
        await self.send_status("Available")
        if self.reset_scheduled:
            self.reset_scheduled = False
            await self.boot("RemoteReset")

    # Physics and metering -----------------------------------------------------------------------

    def running_tx(self) -> RunningTx | None:
        return self.transaction.running if self.transaction is not None else None

    def present_limit(self, now: datetime) -> Limit:
        phases = min(self.point.phases, self.ev.charger_phases) if self.ev else self.point.phases
        return self.profiles.limit(
            now, CONNECTOR, self.running_tx(), phases, self.options.voltage_v, self.point.max_current_a
        )

    def advance(self, now: datetime, step_s: float, temperature_c: float = 20.0) -> Draw:
        """The step that starts at ``now`` and lasts ``step_s``: the EV draws under the limit in force at
        ``now`` (as the CSM's control step decides at its start), the register and the SoC grow."""
        self.limit = self.present_limit(now)
        if self.ev is None or self.transaction is None:
            self.last_draw = NO_DRAW
            return NO_DRAW
        taken = draw(
            self.ev,
            self.soc,
            temperature_c,
            self.limit_a,
            min(self.point.phases, self.limit.phases),
            self.options.voltage_v,
            step_s,
        )
        self.register_wh += taken.energy_wh
        self.soc = min(1.0, self.soc + taken.energy_wh / self.ev.capacity_wh)
        self.last_draw = taken
        return taken

    def _charging_state(self) -> str:
        if self.last_draw.current_a > 0:
            return "Charging"
        return "SuspendedEVSE" if self.limit_a == 0 else "SuspendedEV"

    def _meter_value_201(self, now: datetime, context: str) -> dict[str, Any]:
        soc = self.soc if self.ev is not None else None
        return meter_value_201(iso(now), readings(self.last_draw, self.energy_register_wh, soc), context)

    async def send_meter_values(self) -> None:
        """The present reading; 2.0.1 sends it in the transaction's Updated event when one runs."""
        now = self.clock.now()
        state = self._charging_state()
        if self.version is Version.V16:
            meter = meter_value_16(
                iso(now), readings(self.last_draw, self.energy_register_wh), "Sample.Periodic"
            )
            tx = int(self.transaction.id) if self.transaction is not None else None
            await self.call(
                call16.MeterValues(
                    connector_id=CONNECTOR,
                    transaction_id=tx,
                    meter_value=[meter],
                )
            )
            if self.transaction is not None and state != self.status:
                await self.send_status(state)
            return
        if self.transaction is None:
            meter = self._meter_value_201(now, "Sample.Periodic")
            await self.call(call201.MeterValues(evse_id=CONNECTOR, meter_value=[meter]))
            return
        await self.call(
            call201.TransactionEvent(
                event_type="Updated",
                timestamp=iso(now),
                trigger_reason="MeterValuePeriodic",
                seq_no=self._next_seq(),
                transaction_info={"transactionId": self.transaction.id, "chargingState": state},
                meter_value=[self._meter_value_201(now, "Sample.Periodic")],
                evse={"id": CONNECTOR, "connectorId": CONNECTOR},
            )
        )
