"""The benchmark's figure: energy delivered against transformer capacity, one line per algorithm."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from chargeflow.sim.acn_bench import AcnRecord

STYLE = {
    "offline": ("black", "--"),
    "mpc": ("tab:red", "-"),
    "mpc_forecast": ("tab:pink", "-"),
    "edf": ("tab:blue", "-"),
    "llf": ("tab:green", "-"),
    "round_robin": ("tab:orange", "-"),
    "uncontrolled": ("grey", ":"),
}


def plot_energy(records: Sequence[AcnRecord], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = list(dict.fromkeys(r.algorithm for r in records))
    for name in names:
        rs = sorted((r for r in records if r.algorithm == name), key=lambda r: r.capacity_kw)
        color, line = STYLE.get(name, ("tab:purple", "-"))
        ax.plot(
            [r.capacity_kw for r in rs],
            [r.energy_delivered_pct for r in rs],
            line,
            marker="o",
            color=color,
            label=name,
        )
    ax.set_xlabel("transformer capacity [kW]")
    ax.set_ylabel("energy delivered [% of requested]")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
