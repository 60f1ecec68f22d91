"""The benchmark's figure: energy delivered against transformer capacity, one line per algorithm.

``python -m chargeflow.bench.acn_plot OUT.png TITLE`` draws it from the record lines that ``chargeflow bench
acn`` printed (read on standard input), so that one figure can join the records of several runs.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from chargeflow.bench.acn_bench import AcnRecord

STYLE = {
    "offline": ("black", "--"),
    "mpc": ("tab:red", "-"),
    "mpc_forecast": ("tab:pink", "-"),
    "mpc_phase": ("tab:purple", "-."),
    "mpc_complete": ("tab:brown", "-."),
    "mpc_oracle": ("tab:olive", ":"),
    "edf": ("tab:blue", "-"),
    "llf": ("tab:green", "-"),
    "round_robin": ("tab:orange", "-"),
    "uncontrolled": ("grey", ":"),
}


def plot_energy(records: Sequence[AcnRecord], path: Path, title: str) -> None:
    """Energy delivered against capacity, one line per algorithm; where the records hold ``offline``, a
    second panel below shows each algorithm's distance to it in points (algorithms that broke a limit,
    such as uncontrolled charging, are left out there), since the gaps that matter are a fraction of a
    point and vanish on the first panel's scale; it is linear within one point and logarithmic beyond."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot as plt

    names = list(dict.fromkeys(r.algorithm for r in records))
    bound = {r.capacity_kw: r.energy_delivered_pct for r in records if r.algorithm == "offline"}
    if bound:
        fig, (ax, gap_ax) = plt.subplots(
            2, 1, figsize=(7, 6.5), sharex=True, gridspec_kw={"height_ratios": (2, 1)}
        )
    else:
        fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in names:
        rs = sorted((r for r in records if r.algorithm == name), key=lambda r: r.capacity_kw)
        color, line = STYLE.get(name, ("tab:purple", "-"))
        style = {"marker": "o", "color": color, "label": name}
        ax.plot([r.capacity_kw for r in rs], [r.energy_delivered_pct for r in rs], line, **style)
        kept = [r for r in rs if r.capacity_kw in bound and r.violations == 0]
        if bound and kept:
            gaps = [r.energy_delivered_pct - bound[r.capacity_kw] for r in kept]
            gap_ax.plot([r.capacity_kw for r in kept], gaps, line, **style)
    ax.set_ylabel("energy delivered [% of requested]")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    if bound:
        # Linear within one point of the bound, logarithmic beyond: the online plans' gaps are tenths of a
        # point, the sorting heuristics' several points.
        gap_ax.set_yscale("symlog", linthresh=1.0)
        low = min(gap_ax.get_ylim())
        ticks = [t for t in (0.0, -0.25, -0.5, -0.75, -1.0, -2.0, -5.0, -10.0, -20.0, -50.0) if t >= low]
        gap_ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
        gap_ax.set_ylabel("minus offline [points]")
        gap_ax.grid(alpha=0.3)
        gap_ax.set_xlabel("transformer capacity [kW]")
    else:
        ax.set_xlabel("transformer capacity [kW]")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


_LINE = re.compile(
    r"^\s*(?P<cap>[\d.]+) kW\s+(?P<alg>\w+)\s+energy\s+(?P<energy>[\d.]+) %\s+demands met\s+(?P<met>[\d.]+) %"
    r"\s+peak\s+(?P<peak>[\d.]+) kW\s+median\s+(?P<median>[\d.]+) ms\s+p95\s+(?P<p95>[\d.]+) ms"
    r"\s+violations (?P<violations>\d+)\s+fallbacks (?P<fallbacks>\d+)"
)


def parse_records(text: str) -> list[AcnRecord]:
    """The records in ``bench acn``'s printed lines (other lines are skipped; ``steps`` is not printed)."""
    out = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None:
            continue
        out.append(
            AcnRecord(
                capacity_kw=float(m["cap"]),
                algorithm=m["alg"],
                energy_delivered_pct=float(m["energy"]),
                demands_fully_met_pct=float(m["met"]),
                peak_kw=float(m["peak"]),
                ms_per_step_median=float(m["median"]),
                ms_per_step_p95=float(m["p95"]),
                violations=int(m["violations"]),
                steps=0,
                fallbacks=int(m["fallbacks"]),
            )
        )
    return out


if __name__ == "__main__":
    plot_energy(parse_records(sys.stdin.read()), Path(sys.argv[1]), sys.argv[2])
