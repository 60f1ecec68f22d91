"""The EMS balance of TF-EVC section 3.2.6: grant EV power between need and wish, hold the grid limit.

Two pure steps, each taking the measured facts and returning a decision with its reason:

``grant``  — P_granted for the CSM (eq. 3.2.6.1–2): P_needed ≤ P_granted ≤ P_wished wherever the grid
             access limit allows it. Where it does not, the stationary battery (ESS) may discharge to cover
             the *needs* within its power limit and without going below E_min before the next step
             (eq. 3.2.6.3–4). The ESS is a reserve for needs, not for wishes: the optimiser (a later
             strategy) is where discharging for price or peak belongs.
``settle`` — the ESS set-point once the CSM has split the grant and the EVs' power is known: discharge
             just enough to hold the import limit, or take surplus PV, never more than the battery's power,
             its energy bounds or the fuses on its circuit allow.

Sign conventions: grid power is positive when importing; ``ess_discharge_w`` is positive when the battery
discharges and negative when it charges.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from chargeflow.site.measurement import BuildingPower, EssState
from chargeflow.site.model import Ess, GridConnection
from chargeflow.units import power_for_energy

_TOL_W = 1e-6


class GrantReason(StrEnum):
    """Why P_granted is what it is; codes here, words in the UI."""

    WISHED = "wished"  # everything the EVs wish fits
    GRID_IMPORT = "grid_import_limit"  # more than the needs, less than the wishes: the grid limit binds
    ESS_COVERS_NEEDS = "ess_covers_needs"  # the grid alone cannot carry the needs; the ESS makes up the rest
    NEEDS_EXCEED_GRID = "needs_exceed_grid"  # no ESS, and the grid cannot carry the needs
    NEEDS_EXCEED_ESS_POWER = "needs_exceed_ess_power"  # the ESS at full power is not enough
    NEEDS_EXCEED_ESS_ENERGY = "needs_exceed_ess_energy"  # the ESS would fall below E_min
    BUILDING_OVER_GRID = "building_over_grid_limit"  # the building alone is over the import limit


class EssReason(StrEnum):
    IDLE = "idle"
    COVERS_IMPORT = "covers_import_limit"
    STORES_SURPLUS = "stores_surplus"
    EXPORT_OVER_LIMIT = "export_over_limit"  # surplus beyond what EVs, ESS and the export limit take


@dataclass(frozen=True, slots=True)
class Grant:
    granted_w: float
    feasible: bool  # every need can be met at the grid access point, with the ESS's help
    reason: GrantReason
    ess_reserved_w: float  # ESS discharge the grant relies on (eq. 3.2.6.3)


@dataclass(frozen=True, slots=True)
class EssSetpoint:
    discharge_w: float
    reason: EssReason
    grid_w: float  # the power at the grid access point that follows


def ess_discharge_limit_w(ess: Ess | None, state: EssState | None, step_s: float) -> float:
    """How much the ESS can discharge for one step: its power limit, and E ≥ E_min at the step's end
    (eq. 3.2.6.4)."""
    if ess is None or state is None:
        return 0.0
    above_min_wh = max(state.stored_wh - ess.min_wh, 0.0)
    return min(ess.max_discharge_w, power_for_energy(above_min_wh, step_s))


def ess_charge_limit_w(ess: Ess | None, state: EssState | None, step_s: float) -> float:
    if ess is None or state is None:
        return 0.0
    if ess.capacity_wh is None:
        return ess.max_charge_w
    room_wh = max(ess.capacity_wh - state.stored_wh, 0.0)
    return min(ess.max_charge_w, power_for_energy(room_wh, step_s))


def grant(
    needed_w: float,
    wished_w: float,
    building: BuildingPower,
    grid: GridConnection,
    ess: Ess | None,
    ess_state: EssState | None,
    step_s: float,
) -> Grant:
    """P_granted (eq. 3.2.6.1–4).

    The grant takes all the grid allows up to P_wished: taking more than P_needed when the grid has room
    is what absorbs surplus PV and keeps export within its limit (|P_meter| ≤ P_max^grid).
    """
    if needed_w < 0 or wished_w < needed_w - _TOL_W:
        raise ValueError(f"need 0 ≤ P_needed ≤ P_wished, got {needed_w} and {wished_w}")
    import_room_w = grid.max_import_w - building.net_w
    if needed_w <= import_room_w + _TOL_W:
        if wished_w <= import_room_w:
            return Grant(wished_w, True, GrantReason.WISHED, 0.0)
        return Grant(max(import_room_w, needed_w), True, GrantReason.GRID_IMPORT, 0.0)

    available_w = ess_discharge_limit_w(ess, ess_state, step_s)
    if needed_w <= _TOL_W:
        # Nothing is needed, but the building alone is over the import limit: no EV power, and the
        # ESS helps the building as far as it can.
        return Grant(0.0, True, GrantReason.BUILDING_OVER_GRID, available_w)
    if needed_w <= import_room_w + available_w + _TOL_W:
        return Grant(needed_w, True, GrantReason.ESS_COVERS_NEEDS, needed_w - import_room_w)

    # Infeasible: grant what the grid and a fully used ESS can carry, never more.
    granted_w = max(import_room_w + available_w, 0.0)
    if import_room_w < 0 and granted_w == 0.0:
        reason = GrantReason.BUILDING_OVER_GRID
    elif ess is None or ess_state is None:
        reason = GrantReason.NEEDS_EXCEED_GRID
    elif available_w < ess.max_discharge_w:
        reason = GrantReason.NEEDS_EXCEED_ESS_ENERGY
    else:
        reason = GrantReason.NEEDS_EXCEED_ESS_POWER
    return Grant(granted_w, False, reason, available_w)


def settle(
    building: BuildingPower,
    ev_w: float,
    grid: GridConnection,
    ess: Ess | None,
    ess_state: EssState | None,
    step_s: float,
    ess_charge_room_w: float = float("inf"),
) -> EssSetpoint:
    """The ESS set-point once the EVs' power for this step is known.

    ``ess_charge_room_w`` is what the fuses on the ESS's circuit leave for charging it.
    """
    meter_w = building.net_w + ev_w
    if meter_w > grid.max_import_w:
        discharge_w = min(meter_w - grid.max_import_w, ess_discharge_limit_w(ess, ess_state, step_s))
        reason = EssReason.COVERS_IMPORT if discharge_w > 0 else EssReason.IDLE
        return EssSetpoint(discharge_w, reason, meter_w - discharge_w)
    if meter_w < 0:
        charge_w = min(-meter_w, ess_charge_limit_w(ess, ess_state, step_s), max(ess_charge_room_w, 0.0))
        grid_w = meter_w + charge_w
        if grid_w < -grid.max_export_w - _TOL_W:
            return EssSetpoint(-charge_w, EssReason.EXPORT_OVER_LIMIT, grid_w)
        return EssSetpoint(-charge_w, EssReason.STORES_SURPLUS if charge_w > 0 else EssReason.IDLE, grid_w)
    return EssSetpoint(0.0, EssReason.IDLE, meter_w)
