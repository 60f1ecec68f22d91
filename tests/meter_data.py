"""The shared folder's real meter data (../shared/data/meters, next to the project or above its worktree),
read at test time only: the DSMR reference telegrams are dsmr_parser's (MIT), the SML frames SmlLib's
(GPL-3), and neither is copied into this repository."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

METERS: Path | None = next(
    (
        p / "shared" / "data" / "meters"
        for p in Path(__file__).parents
        if (p / "shared" / "data" / "meters").is_dir()
    ),
    None,
)
DSMR_TELEGRAMS = METERS / "dsmr" / "example_telegrams.py" if METERS else None
SML_FRAMES = METERS / "sml" / "frames.tsv" if METERS else None
MISSING_DSMR = "the shared DSMR telegrams are not here: ../shared/data/meters/dsmr/example_telegrams.py"
MISSING_SML = "the shared SML frames are not here: ../shared/data/meters/sml/frames.tsv"


def dsmr_telegrams() -> dict[str, str]:
    """dsmr_parser's reference telegrams by their constant's name (the file is executed, not imported:
    it is not a package)."""
    if DSMR_TELEGRAMS is None or not DSMR_TELEGRAMS.is_file():
        return {}
    names: dict[str, object] = {}
    exec(compile(DSMR_TELEGRAMS.read_text(), str(DSMR_TELEGRAMS), "exec"), names)
    return {k: v for k, v in names.items() if k.startswith("TELEGRAM") and isinstance(v, str)}


class SmlFrame(NamedTuple):
    name: str
    values: int  # how many list entries SmlLib's test reads from it
    data: bytes


def sml_frames() -> list[SmlFrame]:
    if SML_FRAMES is None or not SML_FRAMES.is_file():
        return []
    frames = []
    for line in SML_FRAMES.read_text().splitlines():
        if line.strip():
            name, values, data = line.split("\t")
            frames.append(SmlFrame(name, int(values), bytes.fromhex(data)))
    return frames
