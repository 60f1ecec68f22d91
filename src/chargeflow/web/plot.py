"""The site's power over the last hours as an SVG, drawn on the server by matplotlib (no CDN, no JS)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime

from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from chargeflow.web.live import FlowSample

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def flows_svg(
    samples: Sequence[FlowSample], grid_limit_w: float, tz: str, main_fuse_w: float | None = None
) -> bytes:
    # A Figure without pyplot has no global state, so several requests may draw at once.
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax = fig.add_subplot()
    # matplotlib's date axis counts days since 1970-01-01 UTC
    times = [(s.at - EPOCH).total_seconds() / 86400 for s in samples]
    series = [
        ("grid import", [s.grid_w for s in samples], "#1f4e79", "-"),
        ("building", [s.building_w for s in samples], "#7f7f7f", "-"),
        ("PV", [s.pv_w for s in samples], "#c98a00", "-"),
        ("battery (discharge +)", [s.ess_w for s in samples], "#6a3d9a", "-"),
        ("EVs", [s.ev_w for s in samples], "#1b7837", "-"),
        ("granted to EVs", [s.granted_w or 0.0 for s in samples], "#1b7837", ":"),
    ]
    for label, values, colour, style in series:
        ax.plot(times, [v / 1000 for v in values], style, color=colour, label=label, linewidth=1.6)
    ax.axhline(grid_limit_w / 1000, color="#b2182b", linestyle="--", linewidth=1.2, label="grid limit")
    if main_fuse_w is not None:
        ax.axhline(main_fuse_w / 1000, color="#d6604d", linestyle="-.", linewidth=1.0, label="main fuse")
    ax.set_ylabel("kW")
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=tz))  # type: ignore[no-untyped-call]
    ax.legend(loc="upper left", fontsize=8, ncols=4, frameon=False)
    out = io.BytesIO()
    fig.savefig(out, format="svg")
    return out.getvalue()
