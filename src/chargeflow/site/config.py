"""The site file (YAML), validated once at the edge and turned into the frozen ``Site``.

Every error names the file, the path of the field (``circuits[1].max_current_a``) and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chargeflow.site.model import ChargingPoint, Circuit, Ess, GridConnection, PhaseTriple, Pv, Site
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


class ChargingPointConfig(Model):
    id: str = Field(min_length=1)
    circuit: str
    phases: Annotated[int, Field(ge=1, le=3)] = 3
    l1_phase: Annotated[int, Field(ge=1, le=3)] = 1
    max_current_a: Positive = 32.0
    min_current_a: NonNegative = 6.0

    def to_point(self) -> ChargingPoint:
        return ChargingPoint(
            self.id, self.circuit, self.phases, self.l1_phase, self.max_current_a, self.min_current_a
        )


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


class SiteConfig(Model):
    id: str = "site"
    timezone: str = "UTC"
    voltage_v: Positive = NOMINAL_VOLTAGE_V
    grid: GridConfig
    circuits: list[CircuitConfig] = Field(min_length=1)
    charging_points: list[ChargingPointConfig] = []
    building: BuildingConfig | None = None
    pv: list[PvConfig] = []
    ess: EssConfig | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (an IANA name such as Europe/Vienna)") from None
        return v

    def to_site(self) -> Site:
        site = Site(
            id=self.id,
            grid=self.grid.to_grid(),
            circuits=tuple(c.to_circuit() for c in self.circuits),
            charging_points=tuple(cp.to_point() for cp in self.charging_points),
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
    return parse_site(data, str(path))
