from pathlib import Path

import pytest

from chargeflow.site.config import ConfigError, load_site, parse_site
from chargeflow.site.tree import check_site
from chargeflow.units import ceil_current, floor_current, grid_phases_of

EXAMPLES = Path(__file__).parents[2] / "examples"


def minimal(**over: object) -> dict[str, object]:
    data: dict[str, object] = {
        "grid": {"max_import_w": 20000, "max_export_w": 10000},
        "circuits": [
            {"id": "main", "max_current_a": 40},
            {"id": "sub", "parent": "main", "max_current_a": 25},
        ],
        "charging_points": [{"id": "cp1", "circuit": "sub"}],
    }
    data.update(over)
    return data


def test_example_site_loads_into_frozen_tree() -> None:
    site = load_site(EXAMPLES / "site.yaml")
    tree = check_site(site)
    assert site.root.id == "main"
    assert tree.chain_of("garage") == (1, 0)
    assert site.circuits[2].fuse_a == (32, 32, 25)
    assert site.ess is not None
    assert site.ess.circuit == "main"
    assert [cp.grid_phases for cp in site.charging_points[4:]] == [(1,), (2,), (3,)]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"circuits": [{"id": "main", "max_current_a": -1}]}, "circuits[0].max_current_a"),
        ({"circuits": [{"id": "main", "max_current_a": [10, 20]}]}, "exactly three"),
        ({"charging_points": [{"id": "cp1", "circuit": "nowhere"}]}, "charging_points[0].circuit: unknown"),
        ({"charging_points": [{"id": "cp1", "circuit": "sub", "phases": 4}]}, "charging_points[0].phases"),
        (
            {
                "circuits": [
                    {"id": "a", "parent": "b", "max_current_a": 1},
                    {"id": "b", "parent": "a", "max_current_a": 1},
                ]
            },
            "exactly one circuit must have no parent",
        ),
        ({"grid": {"max_import_w": 1}}, "grid.max_export_w: Field required"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_site_names_the_field(change: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_site(minimal(**change), "site.yaml")
    assert expected in str(err.value)
    assert str(err.value).startswith("site.yaml")


def test_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_site(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_site(bad)


def test_phase_rotation_and_rounding() -> None:
    assert grid_phases_of(1, 3) == (3,)
    assert grid_phases_of(2, 3) == (3, 1)
    assert grid_phases_of(3, 2) == (2, 3, 1)
    assert floor_current(15.99) == 15.9
    assert floor_current(16.0) == 16.0
    assert ceil_current(6.01) == 6.1
    assert ceil_current(6.0) == 6.0
