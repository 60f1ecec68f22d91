"""A live cost estimate for a running session, for the driver page.

Two figures: the price of what has been metered so far (the session as if it ended at the last meter
sample), and a projection for the session as the driver expects it to go on: a further amount of energy
delivered by a given time, then the EV stays connected (parked) until departure. Both are priced by the
same engine as the final CDR, so that the estimate and the bill follow one set of rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from chargeflow.billing.cdr import MeterSample, needs_sample_periods, tariff_cuts, usage_from_samples
from chargeflow.billing.pricing import SessionCost, price_session
from chargeflow.billing.tariff import Tariff


@dataclass(frozen=True, slots=True)
class Expectation:
    """How the driver (or the EMS's schedule) expects the session to continue."""

    further_energy_wh: int  # still to be charged
    charged_by: datetime  # when that energy will be in the EV
    departure: datetime  # when the EV will be unplugged


@dataclass(frozen=True, slots=True)
class Estimate:
    so_far: SessionCost
    projected: SessionCost | None


def estimate(
    tariff: Tariff,
    start: datetime,
    samples: Sequence[MeterSample],
    tz: tzinfo,
    expectation: Expectation | None = None,
) -> Estimate:
    """Price the running session so far and, given an ``expectation``, as projected to its end."""
    last = samples[-1].at if samples else start
    return Estimate(
        so_far=_price(tariff, start, last, samples, tz),
        projected=None if expectation is None else _projected(tariff, start, samples, tz, expectation),
    )


def _projected(
    tariff: Tariff, start: datetime, samples: Sequence[MeterSample], tz: tzinfo, expect: Expectation
) -> SessionCost:
    if expect.further_energy_wh < 0:
        raise ValueError("further_energy_wh must not be negative")
    last_at = samples[-1].at if samples else start
    last_wh = samples[-1].energy_wh if samples else 0
    if not last_at <= expect.charged_by <= expect.departure:
        raise ValueError("expected: last sample ≤ charged_by ≤ departure")
    if expect.further_energy_wh > 0 and expect.charged_by == last_at:
        raise ValueError("further energy needs time to be charged: charged_by must be after the last sample")
    future = list(samples) if samples else [MeterSample(start, 0)]
    if expect.charged_by > last_at:
        future.append(MeterSample(expect.charged_by, last_wh + expect.further_energy_wh))
    return _price(tariff, start, expect.departure, future, tz)


def _price(
    tariff: Tariff, start: datetime, end: datetime, samples: Sequence[MeterSample], tz: tzinfo
) -> SessionCost:
    cuts = tariff_cuts(tariff, start, end, samples, tz)
    usage = usage_from_samples(start, end, samples, cuts, split_at_samples=needs_sample_periods(tariff))
    return price_session(tariff, usage, tz)
