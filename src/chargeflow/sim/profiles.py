"""A station's charging profiles and the limit they compose to (pure: ``now`` is an argument).

What a charging station does with the profiles the CSMS sends it (OCPP 1.6 §3.13 Smart Charging, OCPP
2.0.1 functional block K):

- Three purposes cap the connector. The station maximum (1.6 ChargePointMaxProfile, 2.0.1
  ChargingStationMaxProfile, on connector/EVSE 0) caps everything; the transaction's own TxProfile
  overrides the TxDefaultProfile; the limit is the least of the station maximum and whichever of the
  two is in force. 2.0.1 external constraints cap like the station maximum (a CSMS cannot set them).
- Within one purpose the profile in force with the highest stackLevel wins. A profile is in force
  while it is valid (validFrom ≤ t < validTo) and its schedule runs (start ≤ t < start + duration):
  when a higher profile's schedule ends, the lower one applies again. A TxDefaultProfile set on the
  connector itself beats one of the same stack level set on connector 0 for all connectors.
- Kinds: Absolute starts at startSchedule, Relative at the start of the transaction (or now, without
  one), Recurring repeats from startSchedule every day or every week.
- Limits in W become A per phase over the phases in use: limit / (phases × voltage); a period's
  numberPhases (3 where absent) bounds the phases the EV may use.

Installing and clearing follow each version's rules (1.6: a profile with the same id, or the same
stack level and purpose on the connector, is replaced; 2.0.1: the same id is replaced, but a different
profile with the same stack level, purpose and EVSE and an overlapping validity is refused, K01.FR.06,
and so is a second TxProfile of the same stack level for the transaction, K01.FR.39).

Payloads are read as the ``ocpp`` library hands them to handlers: keys in snake_case.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from chargeflow.units import CURRENT_STEP_A

DEFAULT_PHASES: Final = 3  # OCPP: numberPhases absent means three
_DAY: Final = timedelta(days=1)
_WEEK: Final = timedelta(days=7)


class Version(StrEnum):
    V16 = "1.6"
    V201 = "2.0.1"


class Purpose(StrEnum):
    STATION_MAX = "ChargingStationMaxProfile"  # 1.6: ChargePointMaxProfile
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"
    EXTERNAL = "ChargingStationExternalConstraints"  # 2.0.1 only, set by the station itself

    @classmethod
    def parse(cls, text: str) -> Purpose:
        return cls.STATION_MAX if text == "ChargePointMaxProfile" else cls(text)

    def wire(self, version: Version) -> str:
        return "ChargePointMaxProfile" if self is Purpose.STATION_MAX and version is Version.V16 else self


class Kind(StrEnum):
    ABSOLUTE = "Absolute"
    RELATIVE = "Relative"
    RECURRING = "Recurring"


class Reason(StrEnum):
    """Why the limit is what it is: which cap binds."""

    HARDWARE = "station_hardware"
    STATION_MAX = "station_max_profile"
    EXTERNAL = "external_constraints"
    TX = "tx_profile"
    TX_DEFAULT = "tx_default_profile"


@dataclass(frozen=True, slots=True)
class Period:
    start_s: int
    limit: float
    phases: int | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    unit: str  # "A" or "W"
    periods: tuple[Period, ...]
    start: datetime | None = None
    duration_s: int | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    id: int
    stack_level: int
    purpose: Purpose
    kind: Kind
    schedule: Schedule
    connector_id: int = 0
    transaction_id: str | None = None
    recurrency: str | None = None  # "Daily" or "Weekly"
    valid_from: datetime | None = None
    valid_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class RunningTx:
    """The transaction running on a connector, as far as profiles care."""

    id: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Limit:
    current_a: float  # per phase
    phases: int
    reason: Reason
    profile_id: int | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    accepted: bool
    reason: str = ""  # why a profile was refused (2.0.1 statusInfo.reasonCode)


@dataclass(frozen=True, slots=True)
class CompositePeriod:
    start_s: int
    limit: float  # in the schedule's unit
    phases: int


@dataclass(frozen=True, slots=True)
class Composite:
    start: datetime
    duration_s: int
    unit: str
    periods: tuple[CompositePeriod, ...]


# Reading payloads --------------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _schedule(raw: Mapping[str, Any]) -> Schedule:
    periods = tuple(
        Period(
            int(p["start_period"]),
            float(p["limit"]),
            int(p["number_phases"]) if p.get("number_phases") is not None else None,
        )
        for p in raw["charging_schedule_period"]
    )
    duration = raw.get("duration")
    return Schedule(
        unit=str(raw["charging_rate_unit"]),
        periods=periods,
        start=_time(raw.get("start_schedule")),
        duration_s=int(duration) if duration is not None else None,
    )


def profile_of(version: Version, connector_id: int, raw: Mapping[str, Any]) -> Profile:
    """A profile from a SetChargingProfile payload (1.6 ``cs_charging_profiles``, 2.0.1
    ``charging_profile``); a 2.0.1 profile's first schedule is the one an AC station follows."""
    if version is Version.V16:
        profile_id, schedule = raw["charging_profile_id"], raw["charging_schedule"]
    else:
        profile_id, schedule = raw["id"], raw["charging_schedule"][0]
    tx = raw.get("transaction_id")
    return Profile(
        id=int(profile_id),
        stack_level=int(raw["stack_level"]),
        purpose=Purpose.parse(raw["charging_profile_purpose"]),
        kind=Kind(raw["charging_profile_kind"]),
        schedule=_schedule(schedule),
        connector_id=connector_id,
        transaction_id=str(tx) if tx is not None else None,
        recurrency=raw.get("recurrency_kind"),
        valid_from=_time(raw.get("valid_from")),
        valid_to=_time(raw.get("valid_to")),
    )


# Evaluating one profile --------------------------------------------------------------------------


def _occurrence(profile: Profile, t: datetime, relative_to: datetime) -> datetime | None:
    """When the schedule that covers ``t`` started, or None when none covers it."""
    schedule = profile.schedule
    if profile.kind is Kind.RELATIVE:
        start = relative_to
    elif profile.kind is Kind.ABSOLUTE:
        start = schedule.start or profile.valid_from or t
    else:
        if schedule.start is None or t < schedule.start:
            return None
        every = _WEEK if profile.recurrency == "Weekly" else _DAY
        start = schedule.start + every * ((t - schedule.start) // every)
    offset = t - start
    if offset < timedelta(0):
        return None
    if schedule.duration_s is not None and offset >= timedelta(seconds=schedule.duration_s):
        return None
    return start


def _valid(profile: Profile, t: datetime) -> bool:
    return (profile.valid_from is None or profile.valid_from <= t) and (
        profile.valid_to is None or t < profile.valid_to
    )


def period_at(profile: Profile, t: datetime, relative_to: datetime | None = None) -> Period | None:
    """The schedule period of ``profile`` in force at ``t``; None where the profile does not apply.

    A Relative schedule starts at ``relative_to``: the start of the transaction, else the moment asked
    about (a composite schedule's start, or ``t`` itself)."""
    if not _valid(profile, t):
        return None
    start = _occurrence(profile, t, relative_to or t)
    if start is None:
        return None
    offset_s = (t - start).total_seconds()
    current = None
    for period in profile.schedule.periods:
        if period.start_s <= offset_s:
            current = period
        else:
            break
    return current


def to_amps(period: Period, unit: str, phases: int, voltage_v: float) -> tuple[float, int]:
    """A period's limit as current per phase, and the phases it allows, for an EV on ``phases``."""
    used = min(phases, period.phases or DEFAULT_PHASES)
    if unit == "W":
        return period.limit / (used * voltage_v), used
    return period.limit, used


# The station's set of profiles -------------------------------------------------------------------


@dataclass(slots=True)
class ChargingProfiles:
    """The profiles a station holds for its connectors, with the version's rules for changing them."""

    version: Version
    connectors: int = 1
    max_stack_level: int = 8
    profiles: list[Profile] = field(default_factory=list)

    def install(self, profile: Profile, tx: RunningTx | None) -> Verdict:
        """SetChargingProfile. ``tx`` is the transaction running on the profile's connector."""
        refused = self._refusal(profile, tx)
        if refused:
            return Verdict(False, refused)
        if profile.purpose is Purpose.TX and profile.transaction_id is None and tx is not None:
            profile = replace(profile, transaction_id=tx.id)  # 1.6: it belongs to the running one
        if self.version is Version.V201:
            clash = next((p for p in self.profiles if p.id != profile.id and _clash(p, profile)), None)
            if clash is not None:
                return Verdict(False, "DuplicateProfile")
            self.profiles = [p for p in self.profiles if p.id != profile.id]
        else:
            self.profiles = [
                p
                for p in self.profiles
                if p.id != profile.id
                and not (
                    p.stack_level == profile.stack_level
                    and p.purpose is profile.purpose
                    and p.connector_id == profile.connector_id
                )
            ]
        self.profiles.append(profile)
        return Verdict(True)

    def _refusal(self, profile: Profile, tx: RunningTx | None) -> str:
        periods = profile.schedule.periods
        if not periods or periods[0].start_s != 0:
            return "InvalidSchedule"
        if any(b.start_s <= a.start_s for a, b in itertools.pairwise(periods)):
            return "InvalidSchedule"
        if any(p.limit < 0 for p in periods) or profile.schedule.unit not in ("A", "W"):
            return "InvalidSchedule"
        if not 0 <= profile.stack_level <= self.max_stack_level:
            return "InvalidStackLevel"
        if not 0 <= profile.connector_id <= self.connectors:
            return "UnknownEvse"
        if profile.kind is Kind.RECURRING and profile.schedule.start is None:
            return "InvalidSchedule"
        if profile.purpose is Purpose.EXTERNAL:
            return "InvalidProfile"  # only the station itself sets external constraints
        if profile.purpose is Purpose.STATION_MAX:
            if profile.connector_id != 0:
                return "InvalidEvse"
            if self.version is Version.V201 and profile.kind is Kind.RELATIVE:
                return "InvalidProfileKind"  # K01.FR.38
        if profile.purpose is Purpose.TX:
            if profile.connector_id == 0:
                return "InvalidEvse"
            if self.version is Version.V201 and profile.transaction_id is None:
                return "MissingTransactionId"  # K01.FR.03
            if tx is None:
                return "NoTransaction"
            if profile.transaction_id is not None and profile.transaction_id != tx.id:
                return "TxNotFound"
        return ""

    def clear(
        self,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: Purpose | None = None,
        stack_level: int | None = None,
    ) -> bool:
        """ClearChargingProfile: by id, else every profile matching all the criteria given.
        Returns whether any was cleared (Accepted) or none matched (Unknown)."""

        def matches(p: Profile) -> bool:
            if p.purpose is Purpose.EXTERNAL:
                return False
            if profile_id is not None:
                return p.id == profile_id
            return (
                (connector_id is None or p.connector_id == connector_id)
                and (purpose is None or p.purpose is purpose)
                and (stack_level is None or p.stack_level == stack_level)
            )

        kept = [p for p in self.profiles if not matches(p)]
        cleared = len(kept) != len(self.profiles)
        self.profiles = kept
        return cleared

    def end_transaction(self, transaction_id: str) -> None:
        """A TxProfile lives as long as its transaction."""
        self.profiles = [
            p for p in self.profiles if not (p.purpose is Purpose.TX and p.transaction_id == transaction_id)
        ]

    # The composite limit -------------------------------------------------------------------------

    def _winner(
        self, purpose: Purpose, connector_id: int, t: datetime, tx: RunningTx | None, relative_to: datetime
    ) -> tuple[Profile, Period] | None:
        best: tuple[tuple[int, int], Profile, Period] | None = None
        for p in self.profiles:
            if p.purpose is not purpose:
                continue
            if purpose in (Purpose.STATION_MAX, Purpose.EXTERNAL):
                if p.connector_id not in (0, connector_id):
                    continue
            elif connector_id == 0 or p.connector_id not in (0, connector_id):
                continue
            if purpose is Purpose.TX and (tx is None or p.transaction_id != tx.id):
                continue
            period = period_at(p, t, relative_to)
            if period is None:
                continue
            rank = (p.stack_level, 1 if p.connector_id == connector_id else 0)
            if best is None or rank > best[0]:
                best = (rank, p, period)
        return None if best is None else (best[1], best[2])

    def limit(
        self,
        t: datetime,
        connector_id: int,
        tx: RunningTx | None,
        phases: int,
        voltage_v: float,
        hardware_max_a: float,
        relative_to: datetime | None = None,
    ) -> Limit:
        """The current per phase the connector may deliver at ``t`` to an EV on ``phases`` phases,
        with the cap that binds. ``relative_to`` anchors Relative schedules when no transaction runs."""
        anchor = tx.started_at if tx is not None else (relative_to or t)
        tx_cap = self._winner(Purpose.TX, connector_id, t, tx, anchor) if tx is not None else None
        caps = (
            (Reason.STATION_MAX, self._winner(Purpose.STATION_MAX, connector_id, t, tx, anchor)),
            (Reason.EXTERNAL, self._winner(Purpose.EXTERNAL, connector_id, t, tx, anchor)),
            (Reason.TX, tx_cap)
            if tx_cap is not None
            else (Reason.TX_DEFAULT, self._winner(Purpose.TX_DEFAULT, connector_id, t, tx, anchor)),
        )
        found = [(reason, cap) for reason, cap in caps if cap is not None]
        for _, (_, period) in found:
            phases = min(phases, period.phases or DEFAULT_PHASES)
        result = Limit(hardware_max_a, phases, Reason.HARDWARE)
        for reason, (profile, period) in found:
            current, _ = to_amps(period, profile.schedule.unit, phases, voltage_v)
            if current < result.current_a:
                result = Limit(current, phases, reason, profile.id)
        return result

    def _breakpoints(self, start: datetime, end: datetime, tx: RunningTx | None) -> Iterator[datetime]:
        yield start
        for p in self.profiles:
            for moment in (p.valid_from, p.valid_to):
                if moment is not None:
                    yield moment
            for origin in _origins(p, start, end, tx):
                yield origin
                for period in p.schedule.periods:
                    yield origin + timedelta(seconds=period.start_s)
                if p.schedule.duration_s is not None:
                    yield origin + timedelta(seconds=p.schedule.duration_s)

    def composite(
        self,
        start: datetime,
        duration_s: int,
        connector_id: int,
        tx: RunningTx | None,
        unit: str,
        phases: int,
        voltage_v: float,
        hardware_max_a: float,
    ) -> Composite:
        """GetCompositeSchedule: the limit from ``start`` for ``duration_s``, one period per change."""
        end = start + timedelta(seconds=duration_s)
        moments = sorted({m for m in self._breakpoints(start, end, tx) if start <= m < end})
        periods: list[CompositePeriod] = []
        for moment in moments:
            limit = self.limit(moment, connector_id, tx, phases, voltage_v, hardware_max_a, start)
            value = limit.current_a if unit == "A" else limit.current_a * limit.phases * voltage_v
            value = math.floor(value / CURRENT_STEP_A + 1e-6) * CURRENT_STEP_A
            offset = math.ceil((moment - start).total_seconds())
            entry = CompositePeriod(offset, round(value, 1), limit.phases)
            if periods and (periods[-1].limit, periods[-1].phases) == (entry.limit, entry.phases):
                continue
            periods.append(entry)
        return Composite(start, duration_s, unit, tuple(periods))


def _origins(profile: Profile, start: datetime, end: datetime, tx: RunningTx | None) -> Iterable[datetime]:
    """The starts of the profile's schedule that can matter between ``start`` and ``end``."""
    schedule = profile.schedule
    if profile.kind is Kind.RELATIVE:
        return [tx.started_at if tx is not None else start]
    if profile.kind is Kind.ABSOLUTE:
        return [schedule.start or profile.valid_from or start]
    if schedule.start is None:
        return []
    every = _WEEK if profile.recurrency == "Weekly" else _DAY
    first = schedule.start + every * max((start - schedule.start) // every, 0)
    count = int((end - first) / every) + 1
    return [first + every * k for k in range(count + 1)]


def _clash(a: Profile, b: Profile) -> bool:
    """2.0.1: two profiles that may not both be installed (K01.FR.06, K01.FR.39)."""
    if a.purpose is not b.purpose or a.stack_level != b.stack_level or a.connector_id != b.connector_id:
        return False
    if a.purpose is Purpose.TX:
        return a.transaction_id == b.transaction_id
    lo_a, hi_a = (
        a.valid_from or datetime.min.replace(tzinfo=UTC),
        a.valid_to or datetime.max.replace(tzinfo=UTC),
    )
    lo_b, hi_b = (
        b.valid_from or datetime.min.replace(tzinfo=UTC),
        b.valid_to or datetime.max.replace(tzinfo=UTC),
    )
    return lo_a < hi_b and lo_b < hi_a
