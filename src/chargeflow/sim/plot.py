"""The power-flow plot of a simulation: what people look at rather than read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from chargeflow.sim.headless import StepRow


def plot_timeline(
    rows: Sequence[StepRow], max_import_w: float, max_export_w: float, path: Path, title: str, timezone: str
) -> None:
    """Consumption stacked above zero (building, EVs), generation below it; the grid line is what the
    grid limit applies to, and the dotted envelope is what the site may consume: the limit plus PV."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    zone = ZoneInfo(timezone)
    t = np.array([r.time.astimezone(zone).replace(tzinfo=None) for r in rows], dtype="datetime64[s]")
    kw = 1 / 1000
    fig, ax = plt.subplots(figsize=(12, 5), dpi=110)
    ax.fill_between(
        t, 0, [r.building_w * kw for r in rows], color="#9aa5b1", alpha=0.6, label="building", step="post"
    )
    ax.fill_between(
        t,
        [r.building_w * kw for r in rows],
        [(r.building_w + r.ev_w) * kw for r in rows],
        color="#2f80ed",
        alpha=0.6,
        label="EVs",
        step="post",
    )
    ax.plot(t, [-r.pv_w * kw for r in rows], color="#f2c94c", lw=1, label="PV (negative: generation)")
    ax.plot(t, [-r.ess_w * kw for r in rows], color="#27ae60", lw=1, label="battery (positive: charging)")
    ax.plot(t, [r.grid_w * kw for r in rows], color="#222", lw=1.2, label="grid (positive: import)")
    ax.axhline(max_import_w * kw, color="#eb5757", ls="--", lw=1.2, label="grid import limit")
    envelope = [(max_import_w + r.pv_w) * kw for r in rows]
    ax.plot(t, envelope, color="#eb5757", ls=":", lw=0.8, alpha=0.7, label="import limit + PV")
    ax.axhline(-max_export_w * kw, color="#eb5757", ls=":", lw=1, label="grid export limit")
    ax.set_ylabel("power [kW]")
    ax.set_xlabel(f"local time ({timezone})")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", ncols=4, fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
