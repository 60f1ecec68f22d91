"""What a simulated station answers to the CSM's calls, for OCPP 1.6J and 2.0.1.

Handlers answer at once from the station's state; what the answer promises (starting a transaction after
a remote start, a reboot after a reset, a triggered message) runs after the answer is sent, through
``SimulatedStation.after_answer``: a handler must not call the CSM while the library waits for it.
The ``ocpp`` library hands payloads over with snake_case keys and turns the answers back into camelCase.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ocpp.routing import on as library_on
from ocpp.v16 import call_result as result16
from ocpp.v201 import call_result as result201

from chargeflow.sim.profiles import Purpose, Version, profile_of

if TYPE_CHECKING:
    from chargeflow.sim.stations import SimulatedStation

CONNECTOR: Final = 1
F = TypeVar("F", bound=Callable[..., Any])


def on(action: str) -> Callable[[F], F]:
    """The library's ``@on`` with a type."""
    decorator: Callable[[F], F] = library_on(action)
    return decorator


def iso(moment: datetime) -> str:
    """UTC with a ``Z`` suffix, as on the wire."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def phase_rotation(l1_phase: int) -> str:
    """The station's wiring as OCPP spells it: RST when its L1 is on grid L1, STR on L2, TRS on L3."""
    return {1: "RST", 2: "STR", 3: "TRS"}[l1_phase]


@dataclass(frozen=True, slots=True)
class RemoteStart:
    """A remote start the station accepted; ``profile`` is the TxProfile it came with (library keys)."""

    id_token: str
    remote_start_id: int | None = None
    profile: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Setting:
    value: Callable[[SimulatedStation], str]
    writable: bool = False


def _setting_int(name: str, default: Callable[[SimulatedStation], int]) -> Setting:
    return Setting(lambda s: s.config.get(name, str(default(s))), writable=True)


# OCPP 1.6 configuration keys (chapter 9) the simulated station has.
KEYS_16: Final = {
    "HeartbeatInterval": _setting_int("HeartbeatInterval", lambda s: s.heartbeat_interval_s),
    "MeterValueSampleInterval": _setting_int("MeterValueSampleInterval", lambda s: 60),
    "MeterValuesSampledData": Setting(
        lambda s: "Energy.Active.Import.Register,Power.Active.Import,Current.Import", writable=True
    ),
    "NumberOfConnectors": Setting(lambda s: "1"),
    "ConnectorPhaseRotation": Setting(lambda s: f"{CONNECTOR}.{phase_rotation(s.point.l1_phase)}"),
    "SupportedFeatureProfiles": Setting(lambda s: "Core,SmartCharging,RemoteTrigger"),
    "ChargeProfileMaxStackLevel": Setting(lambda s: str(s.profiles.max_stack_level)),
    "ChargingScheduleAllowedChargingRateUnit": Setting(lambda s: "Current,Power"),
    "ChargingScheduleMaxPeriods": Setting(lambda s: "24"),
    "MaxChargingProfilesInstalled": Setting(lambda s: "16"),
}

# OCPP 2.0.1 (component, variable) pairs of the device model the simulated station has.
VARIABLES_201: Final = {
    ("OCPPCommCtrlr", "HeartbeatInterval"): _setting_int(
        "HeartbeatInterval", lambda s: s.heartbeat_interval_s
    ),
    ("SampledDataCtrlr", "TxUpdatedInterval"): _setting_int("TxUpdatedInterval", lambda s: 60),
    ("SmartChargingCtrlr", "Enabled"): Setting(lambda s: "true"),
    ("SmartChargingCtrlr", "RateUnit"): Setting(lambda s: "A,W"),
    ("SmartChargingCtrlr", "ProfileStackLevel"): Setting(lambda s: str(s.profiles.max_stack_level)),
    ("SmartChargingCtrlr", "PeriodsPerSchedule"): Setting(lambda s: "24"),
    ("EVSE", "PhaseRotation"): Setting(lambda s: phase_rotation(s.point.l1_phase)),
    ("EVSE", "Power"): Setting(
        lambda s: f"{s.point.max_current_a * s.point.phases * s.options.voltage_v:.0f}"
    ),
}


def _apply_setting(station: SimulatedStation, name: str, value: str) -> None:
    station.config[name] = value
    if name == "HeartbeatInterval":
        station.heartbeat_interval_s = int(value)


def _int_setting(name: str, value: str) -> bool:
    return name not in ("HeartbeatInterval", "MeterValueSampleInterval", "TxUpdatedInterval") or (
        value.isdigit() and int(value) > 0
    )


class _Shared:
    def __init__(self, station: SimulatedStation) -> None:
        self.station = station

    def _composite(self, connector_id: int, duration: int, unit: str | None) -> tuple[datetime, Any]:
        s = self.station
        now = s.clock.now()
        phases = min(s.point.phases, s.ev.charger_phases) if s.ev else s.point.phases
        tx = s.running_tx() if connector_id == CONNECTOR else None
        composite = s.profiles.composite(
            now,
            int(duration),
            connector_id,
            tx,
            unit or "A",
            phases,
            s.options.voltage_v,
            s.point.max_current_a,
        )
        periods = [
            {"start_period": p.start_s, "limit": p.limit, "number_phases": p.phases}
            for p in composite.periods
        ]
        return now, {
            "duration": int(duration),
            "charging_rate_unit": composite.unit,
            "charging_schedule_period": periods,
        }

    def _remote_start(self, remote: RemoteStart) -> bool:
        s = self.station
        if s.transaction is not None:
            return False

        async def start() -> None:
            if s.ev is None:
                s.pending_remote_start = remote  # the next EV plugged in charges under this token
            else:
                await s.start_remote(remote)

        s.after_answer(start)
        return True

    def _remote_stop(self, transaction_id: str) -> bool:
        s = self.station
        if s.transaction is None or s.transaction.id != transaction_id:
            return False
        s.after_answer(lambda: s.stop_transaction("Remote", "RemoteStop"))
        return True

    def _reset(self, reason: str) -> None:
        s = self.station

        async def reboot() -> None:
            await s.stop_transaction(reason, "ResetCommand")
            await s.boot("RemoteReset")

        s.after_answer(reboot)

    def _trigger(self, message: str) -> bool:
        s = self.station
        actions = {
            "BootNotification": lambda: s.boot("Triggered"),
            "Heartbeat": s.heartbeat,
            "StatusNotification": s.send_status,
            "MeterValues": s.send_meter_values,
        }
        if message not in actions:
            return False
        s.after_answer(actions[message])
        return True


class Handlers16(_Shared):
    @on("SetChargingProfile")
    def set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any) -> Any:
        s = self.station
        try:
            profile = profile_of(Version.V16, int(connector_id), cs_charging_profiles)
        except (KeyError, ValueError):
            return result16.SetChargingProfile(status="Rejected")
        verdict = s.profiles.install(profile, s.running_tx() if connector_id == CONNECTOR else None)
        return result16.SetChargingProfile(status="Accepted" if verdict.accepted else "Rejected")

    @on("ClearChargingProfile")
    def clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **_: Any,
    ) -> Any:
        purpose = Purpose.parse(charging_profile_purpose) if charging_profile_purpose else None
        cleared = self.station.profiles.clear(id, connector_id, purpose, stack_level)
        return result16.ClearChargingProfile(status="Accepted" if cleared else "Unknown")

    @on("GetCompositeSchedule")
    def get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **_: Any
    ) -> Any:
        if connector_id not in (0, CONNECTOR):
            return result16.GetCompositeSchedule(status="Rejected")
        now, schedule = self._composite(connector_id, duration, charging_rate_unit)
        schedule["start_schedule"] = iso(now)
        return result16.GetCompositeSchedule(
            status="Accepted", connector_id=connector_id, schedule_start=iso(now), charging_schedule=schedule
        )

    @on("RemoteStartTransaction")
    def remote_start_transaction(
        self,
        id_tag: str,
        connector_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        remote = RemoteStart(id_tag, None, charging_profile)
        accepted = connector_id in (None, CONNECTOR) and self._remote_start(remote)
        return result16.RemoteStartTransaction(status="Accepted" if accepted else "Rejected")

    @on("RemoteStopTransaction")
    def remote_stop_transaction(self, transaction_id: int, **_: Any) -> Any:
        accepted = self._remote_stop(str(transaction_id))
        return result16.RemoteStopTransaction(status="Accepted" if accepted else "Rejected")

    @on("Reset")
    def reset(self, type: str, **_: Any) -> Any:
        self._reset("HardReset" if type == "Hard" else "SoftReset")
        return result16.Reset(status="Accepted")

    @on("TriggerMessage")
    def trigger_message(self, requested_message: str, connector_id: int | None = None, **_: Any) -> Any:
        accepted = self._trigger(requested_message)
        return result16.TriggerMessage(status="Accepted" if accepted else "NotImplemented")

    @on("ChangeConfiguration")
    def change_configuration(self, key: str, value: str, **_: Any) -> Any:
        setting = KEYS_16.get(key)
        if setting is None:
            return result16.ChangeConfiguration(status="NotSupported")
        if not setting.writable or not _int_setting(key, value):
            return result16.ChangeConfiguration(status="Rejected")
        _apply_setting(self.station, key, value)
        return result16.ChangeConfiguration(status="Accepted")

    @on("GetConfiguration")
    def get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        wanted = key or list(KEYS_16)
        known = [
            {"key": k, "readonly": not KEYS_16[k].writable, "value": KEYS_16[k].value(self.station)}
            for k in wanted
            if k in KEYS_16
        ]
        unknown = [k for k in wanted if k not in KEYS_16]
        return result16.GetConfiguration(configuration_key=known, unknown_key=unknown or None)


def _status(accepted: bool, reason: str = "", yes: str = "Accepted", no: str = "Rejected") -> dict[str, Any]:
    answer: dict[str, Any] = {"status": yes if accepted else no}
    if not accepted and reason:
        answer["status_info"] = {"reason_code": reason}
    return answer


def _variable(component: dict[str, Any], variable: dict[str, Any]) -> tuple[Setting | None, str]:
    """The device-model variable asked for, and the attribute status of the lookup."""
    setting = VARIABLES_201.get((component["name"], variable["name"]))
    if setting is not None:
        return setting, "Accepted"
    known = any(name == component["name"] for name, _ in VARIABLES_201)
    return None, "UnknownVariable" if known else "UnknownComponent"


class Handlers201(_Shared):
    @on("SetChargingProfile")
    def set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any], **_: Any) -> Any:
        s = self.station
        try:
            profile = profile_of(Version.V201, int(evse_id), charging_profile)
        except (KeyError, ValueError, IndexError):
            return result201.SetChargingProfile(**_status(False, "InvalidSchedule"))
        verdict = s.profiles.install(profile, s.running_tx() if evse_id == CONNECTOR else None)
        return result201.SetChargingProfile(**_status(verdict.accepted, verdict.reason))

    @on("ClearChargingProfile")
    def clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        criteria = charging_profile_criteria or {}
        purpose = criteria.get("charging_profile_purpose")
        cleared = self.station.profiles.clear(
            charging_profile_id,
            criteria.get("evse_id"),
            Purpose.parse(purpose) if purpose else None,
            criteria.get("stack_level"),
        )
        return result201.ClearChargingProfile(status="Accepted" if cleared else "Unknown")

    @on("GetCompositeSchedule")
    def get_composite_schedule(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **_: Any
    ) -> Any:
        if evse_id not in (0, CONNECTOR):
            return result201.GetCompositeSchedule(**_status(False, "UnknownEVSE"))
        now, schedule = self._composite(evse_id, duration, charging_rate_unit)
        schedule |= {"evse_id": evse_id, "schedule_start": iso(now)}
        return result201.GetCompositeSchedule(status="Accepted", schedule=schedule)

    @on("RequestStartTransaction")
    def request_start_transaction(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        remote = RemoteStart(id_token["id_token"], remote_start_id, charging_profile)
        accepted = evse_id in (None, CONNECTOR) and self._remote_start(remote)
        return result201.RequestStartTransaction(**_status(accepted))

    @on("RequestStopTransaction")
    def request_stop_transaction(self, transaction_id: str, **_: Any) -> Any:
        return result201.RequestStopTransaction(**_status(self._remote_stop(transaction_id)))

    @on("Reset")
    def reset(self, type: str, evse_id: int | None = None, **_: Any) -> Any:
        s = self.station
        if type == "OnIdle" and s.transaction is not None:
            s.reset_scheduled = True  # K: reboot once the transaction has ended
            return result201.Reset(status="Scheduled")
        self._reset("ImmediateReset")
        return result201.Reset(status="Accepted")

    @on("TriggerMessage")
    def trigger_message(self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any) -> Any:
        accepted = self._trigger(requested_message)
        return result201.TriggerMessage(status="Accepted" if accepted else "NotImplemented")

    @on("GetVariables")
    def get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in get_variable_data:
            component, variable = item["component"], item["variable"]
            setting, status = _variable(component, variable)
            result: dict[str, Any] = {
                "component": component,
                "variable": variable,
                "attribute_status": status,
            }
            if setting is not None:
                result["attribute_value"] = setting.value(self.station)
            results.append(result)
        return result201.GetVariables(get_variable_result=results)

    @on("SetVariables")
    def set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in set_variable_data:
            component, variable, value = item["component"], item["variable"], str(item["attribute_value"])
            setting, status = _variable(component, variable)
            if setting is not None and (not setting.writable or not _int_setting(variable["name"], value)):
                status = "Rejected"
            elif setting is not None:
                _apply_setting(self.station, variable["name"], value)
            results.append({"attribute_status": status, "component": component, "variable": variable})
        return result201.SetVariables(set_variable_result=results)


def handlers_for(station: SimulatedStation) -> Handlers16 | Handlers201:
    return Handlers16(station) if station.version is Version.V16 else Handlers201(station)
