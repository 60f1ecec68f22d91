"""The site's power over a range (the last hours, today, yesterday, the last 7 days) as an SVG, drawn on
the server by matplotlib (no CDN, no JS)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from typing import Final
from zoneinfo import ZoneInfo

from matplotlib.dates import AutoDateLocator, DateFormatter
from matplotlib.figure import Figure

from chargeflow.web.live import FlowSample

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RECENT: Final = timedelta(hours=3)  # what ``web.live.FlowHistory`` keeps in memory
GAP_STEPS: Final = 5
PLOT_POINTS: Final = 720  # per chart: 7 days in 14-minute buckets, finer than the chart's pixels show


@dataclass(frozen=True, slots=True)
class PlotRange:
    """What one chart shows: [start, end) in UTC, its title and how its time axis is labelled."""

    name: str
    start: datetime
    end: datetime
    title: str
    time_format: str


RANGES: Final = ("hours", "today", "yesterday", "7d")


def plot_range(name: str, now: datetime, tz: str) -> PlotRange:
    """The range called ``name`` at ``now``; days begin at midnight in the site's time zone ``tz``.
    An unknown name raises ``ValueError``."""
    midnight = datetime.combine(now.astimezone(ZoneInfo(tz)).date(), time(0), ZoneInfo(tz))
    if name == "hours":
        return PlotRange(name, now - RECENT, now, "The last hours", "%H:%M")
    if name == "today":
        return PlotRange(name, midnight.astimezone(UTC), now, "Today", "%H:%M")
    if name == "yesterday":
        # the day before, by the calendar: 23 or 25 hours on the days the clocks change
        start = datetime.combine(midnight.date() - timedelta(days=1), time(0), ZoneInfo(tz))
        return PlotRange(name, start.astimezone(UTC), midnight.astimezone(UTC), "Yesterday", "%H:%M")
    if name == "7d":
        return PlotRange(name, now - timedelta(days=7), now, "The last 7 days", "%a %d")
    raise ValueError(f"range: one of {', '.join(RANGES)}, not {name!r}")


def _days(at: datetime) -> float:
    return (at - EPOCH).total_seconds() / 86400  # matplotlib's date axis counts days since 1970 UTC


def _with_gaps(samples: Sequence[FlowSample]) -> tuple[list[float], list[FlowSample | None]]:
    """The samples' times and the samples, with a None (a break in the lines) where a pause is longer than
    ``GAP_STEPS`` times the usual spacing: the hours a site was stopped are a gap, not a straight line."""
    times = [_days(s.at) for s in samples]
    spacings = sorted(b - a for a, b in pairwise(times))
    usual = spacings[len(spacings) // 2] if spacings else 0.0
    out_times: list[float] = []
    out: list[FlowSample | None] = []
    for i, sample in enumerate(samples):
        if i and times[i] - times[i - 1] > GAP_STEPS * usual:
            out_times.append((times[i - 1] + times[i]) / 2)
            out.append(None)
        out_times.append(times[i])
        out.append(sample)
    return out_times, out


def flows_svg(
    samples: Sequence[FlowSample],
    grid_limit_w: float,
    tz: str,
    main_fuse_w: float | None = None,
    span: PlotRange | None = None,
) -> bytes:
    # A Figure without pyplot has no global state, so several requests may draw at once.
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax = fig.add_subplot()
    times, rows = _with_gaps(samples)
    series = [
        ("grid import", [s.grid_w if s else math.nan for s in rows], "#1f4e79", "-"),
        ("building", [s.building_w if s else math.nan for s in rows], "#7f7f7f", "-"),
        ("PV", [s.pv_w if s else math.nan for s in rows], "#c98a00", "-"),
        ("battery (discharge +)", [s.ess_w if s else math.nan for s in rows], "#6a3d9a", "-"),
        ("EVs", [s.ev_w if s else math.nan for s in rows], "#1b7837", "-"),
        ("granted to EVs", [(s.granted_w or 0.0) if s else math.nan for s in rows], "#1b7837", ":"),
    ]
    for label, values, colour, style in series:
        ax.plot(times, [v / 1000 for v in values], style, color=colour, label=label, linewidth=1.6)
    ax.axhline(grid_limit_w / 1000, color="#b2182b", linestyle="--", linewidth=1.2, label="grid limit")
    if main_fuse_w is not None:
        ax.axhline(main_fuse_w / 1000, color="#d6604d", linestyle="-.", linewidth=1.0, label="main fuse")
    ax.set_ylabel("kW")
    ax.grid(alpha=0.3)
    time_format = span.time_format if span is not None else "%H:%M"
    # ticks at round local times (midnight, 06:00, …), not at UTC's
    ax.xaxis.set_major_locator(AutoDateLocator(tz=tz))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(DateFormatter(time_format, tz=tz))  # type: ignore[no-untyped-call]
    if span is not None:
        ax.set_xlim(_days(span.start), _days(span.end))
        ax.set_title(span.title, loc="left", fontsize=10)
    ax.legend(loc="upper left", fontsize=8, ncols=4, frameon=False)
    out = io.BytesIO()
    fig.savefig(out, format="svg")
    return out.getvalue()
