"""The site file (YAML), validated once at the edge and turned into the frozen ``Site``.

Every error names the file, the path of the field (``circuits[1].max_current_a``) and what was expected.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from chargeflow.site.model import ChargingPoint, Circuit, Ess, GridConnection, PhaseTriple, Pv, Site
from chargeflow.site.prices import EnergyPrices, TimeOfUse
from chargeflow.site.templates import expand
from chargeflow.site.tree import SiteError, check_site
from chargeflow.units import NOMINAL_VOLTAGE_V

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]


class Model(BaseModel):
    """Input models: unknown fields are errors, values are frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class GridConfig(Model):
    max_import_w: NonNegative
    max_export_w: NonNegative

    def to_grid(self) -> GridConnection:
        return GridConnection(self.max_import_w, self.max_export_w)


class CircuitConfig(Model):
    id: str = Field(min_length=1)
    parent: str | None = None
    max_current_a: Positive | list[Positive] = Field(
        description="fuse rating in A: one number for all three phases, or [L1, L2, L3]"
    )

    @field_validator("max_current_a")
    @classmethod
    def _three_phases(cls, v: float | list[float]) -> float | list[float]:
        if isinstance(v, list) and len(v) != 3:
            raise ValueError("give one rating for all phases or exactly three, [L1, L2, L3]")
        return v

    def fuse_a(self) -> PhaseTriple:
        v = self.max_current_a
        return (v[0], v[1], v[2]) if isinstance(v, list) else (v, v, v)

    def to_circuit(self) -> Circuit:
        return Circuit(self.id, self.parent, self.fuse_a())


#: OCPP 2.0.1 (part 2, 1.6 security whitepaper likewise): identifierString of at most 48 characters; the
#: station id is also the last segment of its URL, so no slash, and no colon (it would end Basic auth's user)
STATION_ID = re.compile(r"[A-Za-z0-9*\-_=+|@.]{1,48}")


def _station_id(v: str) -> str:
    if not STATION_ID.fullmatch(v):
        raise ValueError(
            f"{v!r} cannot be a station's OCPP id: 1 to 48 of the letters, digits and * - _ = + | @ ."
        )
    return v


StationId = Annotated[str, AfterValidator(_station_id)]
#: ``csm.passwords``' format, as ``chargeflow station-password`` prints it
PASSWORD_HASH = r"^pbkdf2_sha256\$[0-9]{4,7}\$[0-9a-f]{16,}\$[0-9a-f]{64}$"


class Credentials(Model):
    """How a listed station proves who it is: a password hash (security profile 1 or 2: HTTP Basic) or
    its client certificate's SHA-256 fingerprint (profile 3). A station with neither is accepted by its id
    alone, which ``serve`` warns of at start-up."""

    password_hash: str | None = Field(
        default=None, pattern=PASSWORD_HASH, description="from `chargeflow station-password`"
    )
    certificate_sha256: str | None = Field(
        default=None, description="SHA-256 of the station's client certificate (DER), hex, colons allowed"
    )

    @field_validator("certificate_sha256")
    @classmethod
    def _fingerprint(cls, v: str | None) -> str | None:
        if v is None:
            return None
        digits = v.replace(":", "").lower()
        if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
            raise ValueError("a SHA-256 fingerprint is 64 hex digits (colons between pairs allowed)")
        return digits


class Wiring(Model):
    """Where a charging point is wired and what it can carry."""

    circuit: str
    phases: Annotated[int, Field(ge=1, le=3)] = 3
    l1_phase: Annotated[int, Field(ge=1, le=3)] = 1
    max_current_a: Positive = 32.0
    min_current_a: NonNegative = 6.0

    def point(
        self, point_id: str, station_id: str | None = None, evse_id: int | None = None
    ) -> ChargingPoint:
        return ChargingPoint(
            point_id,
            self.circuit,
            self.phases,
            self.l1_phase,
            self.max_current_a,
            self.min_current_a,
            station_id=station_id,
            evse_id=evse_id,
        )


class ChargingPointConfig(Credentials, Wiring):
    """A station with one EVSE, named by its OCPP id."""

    id: StationId

    def to_point(self) -> ChargingPoint:
        return self.point(self.id)


class EvseConfig(Wiring):
    """One EVSE of a station (1.6: one connector): where it is wired and what it can carry."""

    evse: Annotated[int, Field(ge=1)] = Field(description="its id at the station (1.6: the connector id)")
    name: str | None = Field(default=None, min_length=1, description="on the site; default STATION/EVSE")


class StationConfig(Credentials):
    """A station as it is: its OCPP id, its credentials and its EVSEs, each on its own circuit and phase
    rotation (``stations:``)."""

    id: StationId
    evses: list[EvseConfig] = Field(min_length=1)

    def to_points(self) -> list[ChargingPoint]:
        return [e.point(e.name or f"{self.id}/{e.evse}", self.id, e.evse) for e in self.evses]


class AutoRegisterConfig(Model):
    """Where stations that register themselves go (``auto_register:``): up to ``max_stations`` of them on
    one circuit, each counted in the fuses' safe shares from the start as a station of this size, on all
    three phases (its phase rotation is not known). Each takes the first free place when it first
    connects and keeps it while ``serve`` runs; a station beyond them is held at 0 A, with an event."""

    circuit: str
    max_stations: Annotated[int, Field(ge=1, le=1000)]
    max_current_a: Positive = 32.0
    min_current_a: NonNegative = 6.0

    def to_points(self) -> list[ChargingPoint]:
        return [
            ChargingPoint(
                f"{self.circuit}-auto-{n}",
                self.circuit,
                3,
                1,
                self.max_current_a,
                self.min_current_a,
                auto=True,
            )
            for n in range(1, self.max_stations + 1)
        ]


@dataclass(frozen=True, slots=True)
class StationCredentials:
    station_id: str
    password_hash: str | None
    certificate_sha256: str | None


class BuildingConfig(Model):
    circuit: str
    peak_w: Positive | None = Field(default=None, description="peak load, to scale a load profile")


class PvConfig(Model):
    id: str = Field(min_length=1)
    circuit: str
    peak_w: Positive


class EssConfig(Model):
    circuit: str | None = Field(default=None, description="defaults to the root circuit")
    capacity_wh: Annotated[int, Field(gt=0)]
    min_wh: Annotated[int, Field(ge=0)] = 0
    max_charge_w: NonNegative
    max_discharge_w: NonNegative

    def to_ess(self, root_circuit: str) -> Ess:
        return Ess(
            self.circuit or root_circuit,
            self.capacity_wh,
            self.min_wh,
            self.max_charge_w,
            self.max_discharge_w,
        )


def root_circuit(circuits: list[CircuitConfig]) -> str:
    """The id of the circuit without a parent (the first one, if the tree is malformed: checked later)."""
    return next((c.id for c in circuits if c.parent is None), circuits[0].id)


class TariffConfig(Model):
    """One of the site's tariffs: an OCPI 2.2.1 Tariff object, inline or in a JSON file beside the site
    file, and whom it is for. ``billing.setup`` parses the tariff itself, so that its errors name the field
    inside it."""

    file: str | None = Field(default=None, description="OCPI tariff JSON, relative to the site file")
    tariff: dict[str, Any] | None = Field(default=None, description="the OCPI tariff object inline")
    stations: list[str] = Field(default_factory=list, description="station ids; none: every station")
    token_groups: list[str] = Field(default_factory=list, description="id-token groups; none: every one")

    @model_validator(mode="after")
    def _one_source(self) -> TariffConfig:
        if (self.file is None) == (self.tariff is None):
            raise ValueError("give either file or tariff")
        return self


class BillingConfig(Model):
    """The ``billing:`` section of the site file: tariffs, id-token groups, the attribution rule."""

    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$", description="of a session no tariff prices")
    tariffs: list[TariffConfig] = []
    token_groups: dict[str, list[str]] = Field(
        default_factory=dict, description="group name: the id tokens in it"
    )
    ad_hoc_groups: list[str] = Field(
        default_factory=list, description="token groups whose sessions are ad-hoc (card) payments"
    )
    attribution: Literal["building_first", "pro_rata", "evs_first"] = "building_first"
    meter_keys: dict[str, str] = Field(
        default_factory=dict, description="station id: its meter's OCMF public key (hex or base64 DER)"
    )


DsmrVersion = Literal["auto", "2.2", "3", "4", "5", "5B", "5L", "5S", "Q3D", "ISKRA_IE", "5EONHU"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TimeOfUseConfig(Model):
    days: list[Weekday] = Field(default=list(WEEKDAYS), min_length=1)
    start: time = Field(description="local time, HH:MM")
    end: time = Field(description="local time, HH:MM; not after start: the period runs over midnight")
    per_kwh: Decimal = Field(ge=0)

    def to_rule(self) -> TimeOfUse:
        return TimeOfUse(frozenset(WEEKDAYS.index(d) for d in self.days), self.start, self.end, self.per_kwh)


class EnergyPricesConfig(Model):
    """The ``energy_prices:`` section: what the site pays per kWh from the grid, for drivers' price caps
    and the optimiser (``site.prices``)."""

    default_per_kwh: Decimal = Field(ge=0)
    time_of_use: list[TimeOfUseConfig] = []
    day_ahead_file: str | None = Field(
        default=None, description="CSV with a header start,per_kwh; start in ISO 8601 with its UTC offset"
    )
    period_min: int = Field(default=60, gt=0, description="how long each day-ahead price holds")


class MeterConfig(Model):
    """One measuring device of the site (``meters:``): where its readings come from and how to read them;
    by ``template`` name (``site.templates``) with a few params, or setting by setting."""

    template: str | None = None  # the template it was made from (``site.templates``), if any
    id: str = Field(min_length=1)
    role: Literal["grid", "pv", "battery", "building", "circuit"]
    #: mqtt and http read JSON (with the paths below); sunspec is Modbus TCP, dsmr a P1 port, sml an IR
    #: head, over a serial port or TCP (a ser2net bridge, a P1 dongle)
    adapter: Literal["mqtt", "http", "sunspec", "dsmr", "sml"]
    circuit: str | None = None  # for role ``circuit``: the circuit it measures
    topic: str | None = None  # mqtt: the topic its JSON messages come on
    url: str | None = None  # http: the address polled for its JSON
    interval_s: Positive = 5.0  # http and sunspec: how often it is polled
    host: str | None = None  # sunspec, and dsmr or sml over TCP: the device's or bridge's address
    port: Annotated[int, Field(ge=1, le=65535)] | None = None  # its TCP port (sunspec: 502)
    serial_port: str | None = None  # dsmr or sml on a serial line, e.g. /dev/ttyUSB0
    baudrate: Annotated[int, Field(gt=0)] | None = None  # of the serial line (dsmr 5: 115200; sml: 9600)
    unit_id: Annotated[int, Field(ge=0, le=255)] = 1  # sunspec: the Modbus unit id
    #: dsmr: the telegram's specification in dsmr-parser: auto (the one that reads most of the first good
    #: telegram), 2.2, 3, 4, 5, 5B (Belgium, Fluvius), 5L (Luxembourg), 5S (Sweden), Q3D, ISKRA_IE, 5EONHU
    dsmr_version: DsmrVersion = "auto"
    #: mqtt and http: the JSON path of its power, e.g. $.ENERGY.Power
    power: str | None = Field(default=None, min_length=1)
    #: the JSON paths of its currents on grid phases L1, L2, L3 in A (a circuit meter's per-phase
    #: reading, e.g. a Shelly Pro 3EM's $.em:0.a_current …); None: the power counts balanced
    currents: list[str] | None = Field(default=None, min_length=3, max_length=3)
    soc: str | None = None  # the JSON path of a battery's state of charge, %
    unit: Literal["W", "kW"] = "W"
    #: +1: positive is import (grid), production (pv), discharge (battery), consumption (building, circuit);
    #: -1 for a meter that counts the other way
    sign: Literal[1, -1] = 1
    stale_after_s: Positive = 30.0  # a reading older than this is not used

    @model_validator(mode="before")
    @classmethod
    def _from_template(cls, data: Any) -> Any:
        return expand(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _source(self) -> MeterConfig:
        if self.adapter == "mqtt" and not self.topic:
            raise ValueError("an mqtt meter needs its topic")
        if self.adapter == "http" and not self.url:
            raise ValueError("an http meter needs its url")
        if self.adapter in ("mqtt", "http") and not self.power:
            raise ValueError(f"an {self.adapter} meter needs the JSON path of its power (power: $.…)")
        if self.adapter == "sunspec" and not self.host:
            raise ValueError("a sunspec meter needs its host (and port, 502 by default)")
        if self.adapter in ("dsmr", "sml") and (self.host is None) == (self.serial_port is None):
            raise ValueError(f"a {self.adapter} meter needs either its serial_port or its host and port")
        if self.adapter in ("dsmr", "sml") and self.host is not None and self.port is None:
            raise ValueError(f"a {self.adapter} meter over TCP needs its port")
        if self.role == "circuit" and not self.circuit:
            raise ValueError("a circuit meter names its circuit")
        return self


class MqttBrokerConfig(Model):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)


class SiteConfig(Model):
    id: str = "site"
    timezone: str = "UTC"
    voltage_v: Positive = NOMINAL_VOLTAGE_V
    grid: GridConfig
    circuits: list[CircuitConfig] = Field(min_length=1)
    charging_points: list[ChargingPointConfig] = []
    stations: list[StationConfig] = []
    auto_register: AutoRegisterConfig | None = None
    building: BuildingConfig | None = None
    pv: list[PvConfig] = []
    ess: EssConfig | None = None
    billing: BillingConfig = BillingConfig()
    energy_prices: EnergyPricesConfig | None = None
    meters: list[MeterConfig] = []
    mqtt: MqttBrokerConfig = MqttBrokerConfig()  # the broker of the site's MQTT meters

    @model_validator(mode="after")
    def _meters_known(self) -> SiteConfig:
        ids = [m.id for m in self.meters]
        if len(set(ids)) != len(ids):
            raise ValueError(f"meter ids must be unique: {ids}")
        circuits = {c.id for c in self.circuits}
        for m in self.meters:
            if m.circuit is not None and m.circuit not in circuits:
                raise ValueError(f"meter {m.id!r} names unknown circuit {m.circuit!r}")
        roles = [m.role for m in self.meters if m.role != "circuit"]
        if len(set(roles)) != len(roles):
            raise ValueError(f"one meter per role grid, pv, battery and building: {roles}")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (an IANA name such as Europe/Vienna)") from None
        return v

    @model_validator(mode="after")
    def _stations_known(self) -> SiteConfig:
        ids = [cp.id for cp in self.charging_points] + [s.id for s in self.stations]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"each station is listed once, in charging_points or stations: {twice}")
        for s in self.stations:
            evses = [e.evse for e in s.evses]
            if len(set(evses)) != len(evses):
                raise ValueError(f"station {s.id!r} lists an EVSE twice: {evses}")
        if self.auto_register is not None and self.auto_register.circuit not in {c.id for c in self.circuits}:
            raise ValueError(f"auto_register names unknown circuit {self.auto_register.circuit!r}")
        return self

    def points(self) -> tuple[ChargingPoint, ...]:
        """Every charging point: the one-EVSE stations', each EVSE of the others, the places kept for
        stations that register themselves."""
        points = [cp.to_point() for cp in self.charging_points]
        for s in self.stations:
            points.extend(s.to_points())
        if self.auto_register is not None:
            points.extend(self.auto_register.to_points())
        return tuple(points)

    def credentials(self) -> tuple[StationCredentials, ...]:
        listed: list[ChargingPointConfig | StationConfig] = [*self.charging_points, *self.stations]
        return tuple(StationCredentials(c.id, c.password_hash, c.certificate_sha256) for c in listed)

    def to_site(self) -> Site:
        site = Site(
            id=self.id,
            grid=self.grid.to_grid(),
            circuits=tuple(c.to_circuit() for c in self.circuits),
            charging_points=self.points(),
            building_circuit=self.building.circuit if self.building else None,
            pv=tuple(Pv(p.id, p.circuit, p.peak_w) for p in self.pv),
            ess=self.ess.to_ess(root_circuit(self.circuits)) if self.ess else None,
            voltage_v=self.voltage_v,
            building_peak_w=self.building.peak_w if self.building else None,
            timezone=self.timezone,
        )
        check_site(site)
        return site


class ConfigError(ValueError):
    """A configuration or input that cannot be used; the message is meant for the person who wrote it."""


def format_validation_error(source: str, err: ValidationError) -> str:
    lines = [f"{source}: {err.error_count()} problem(s)"]
    for e in err.errors():
        path = _path(e["loc"])
        lines.append(f"  {path or '(top level)'}: {e['msg']}")
    return "\n".join(lines)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_site(data: Any, source: str = "site") -> Site:
    try:
        return SiteConfig.model_validate(data).to_site()
    except ValidationError as err:
        raise ConfigError(format_validation_error(source, err)) from None
    except SiteError as err:
        raise ConfigError(f"{source}: {err}") from None


def load_site(path: Path) -> Site:
    """Read and validate a YAML site file."""
    return parse_site(_read_yaml(path), str(path))


@dataclass(frozen=True, slots=True)
class MetersConfig:
    broker: MqttBrokerConfig
    meters: tuple[MeterConfig, ...]


def parse_meters(data: Any, source: str = "site") -> MetersConfig:
    """The site file's ``meters:`` and ``mqtt:`` sections (the whole file is checked)."""
    try:
        config = SiteConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(source, err)) from None
    return MetersConfig(config.mqtt, tuple(config.meters))


def parse_credentials(data: Any, source: str = "site") -> tuple[StationCredentials, ...]:
    """The listed stations' credentials (the whole file is checked)."""
    try:
        return SiteConfig.model_validate(data).credentials()
    except ValidationError as err:
        raise ConfigError(format_validation_error(source, err)) from None


def load_credentials(path: Path) -> tuple[StationCredentials, ...]:
    return parse_credentials(_read_yaml(path), str(path))


def load_meters(path: Path) -> MetersConfig:
    return parse_meters(_read_yaml(path), str(path))


def parse_billing(data: Any, source: str = "site", base: Path | None = None) -> BillingConfig:
    """The site file's ``billing:`` section, with every tariff ``file`` read (relative to ``base``) and
    put inline, numbers as ``Decimal`` so that prices stay exact."""
    try:
        billing = SiteConfig.model_validate(data).billing
    except ValidationError as err:
        raise ConfigError(format_validation_error(source, err)) from None
    tariffs = []
    for i, entry in enumerate(billing.tariffs):
        if entry.file is not None:
            path = (base or Path(".")) / entry.file
            try:
                inline = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
            except OSError as err:
                raise ConfigError(
                    f"{source}: billing.tariffs[{i}].file: cannot read {entry.file} ({err.strerror})"
                ) from None
            except ValueError as err:
                raise ConfigError(
                    f"{source}: billing.tariffs[{i}].file: {entry.file} is not JSON: {err}"
                ) from None
            entry = entry.model_copy(update={"file": None, "tariff": inline})
        tariffs.append(entry)
    return billing.model_copy(update={"tariffs": tariffs})


def load_billing(path: Path) -> BillingConfig:
    """The ``billing:`` section of a YAML site file (validated like the rest of it)."""
    return parse_billing(_read_yaml(path), str(path), path.parent)


def parse_energy_prices(data: Any, source: str = "site", base: Path | None = None) -> EnergyPrices | None:
    """The site file's ``energy_prices:`` section, with its day-ahead file read; None without one."""
    try:
        site = SiteConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(source, err)) from None
    config = site.energy_prices
    if config is None:
        return None
    day_ahead: list[tuple[datetime, Decimal]] = []
    if config.day_ahead_file is not None:
        where = f"{source}: energy_prices.day_ahead_file: {config.day_ahead_file}"
        path = (base or Path(".")) / config.day_ahead_file
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"{where}: cannot read it ({err.strerror})") from None
        rows = csv.DictReader(io.StringIO(text))
        for n, row in enumerate(rows, start=2):
            try:
                start = datetime.fromisoformat(row["start"])
                price = Decimal(row["per_kwh"])
            except (KeyError, TypeError) as err:
                raise ConfigError(f"{where}, line {n}: expected the columns start,per_kwh ({err})") from None
            except (ValueError, ArithmeticError) as err:
                raise ConfigError(f"{where}, line {n}: {err}") from None
            if start.tzinfo is None:
                raise ConfigError(f"{where}, line {n}: {row['start']} has no UTC offset")
            if day_ahead and start <= day_ahead[-1][0]:
                raise ConfigError(f"{where}, line {n}: {row['start']} is not after the line before")
            day_ahead.append((start, price))
    return EnergyPrices(
        config.default_per_kwh,
        tuple(r.to_rule() for r in config.time_of_use),
        tuple(day_ahead),
        timedelta(minutes=config.period_min),
        site.timezone,
    )


def load_energy_prices(path: Path) -> EnergyPrices | None:
    """The ``energy_prices:`` section of a YAML site file, its day-ahead file relative to the site file."""
    return parse_energy_prices(_read_yaml(path), str(path), path.parent)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the site file ({err.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with grid, circuits, charging_points …")
    return data
