"""The OCPI JSON edge and the ``chargeflow tariff price`` command: exact output, errors naming the field."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from chargeflow.billing.schema import BillingInputError, decimal_text, parse_cdr_usage, parse_tariff
from chargeflow.cli import main

TARIFF: dict[str, Any] = {
    "country_code": "DE",
    "party_id": "ALL",
    "id": "10",
    "currency": "EUR",
    "tariff_alt_text": [{"language": "en", "text": "0.25/kWh, 2.00/h parking, 0.50 start"}],
    "elements": [
        {"price_components": [{"type": "FLAT", "price": 0.50, "vat": 20.0, "step_size": 1}]},
        {"price_components": [{"type": "ENERGY", "price": 0.25, "vat": 10.0, "step_size": 1}]},
        {"price_components": [{"type": "PARKING_TIME", "price": 2.00, "vat": 20.0, "step_size": 900}]},
    ],
    "last_updated": "2018-12-17T17:15:01Z",
}

CDR: dict[str, Any] = {
    "id": "12345",
    "currency": "EUR",
    "start_date_time": "2019-06-03T10:00:00Z",
    "end_date_time": "2019-06-03T12:40:00Z",
    "charging_periods": [
        {
            "start_date_time": "2019-06-03T10:00:00Z",
            "dimensions": [{"type": "ENERGY", "volume": 20}, {"type": "TIME", "volume": 2}],
        },
        {
            "start_date_time": "2019-06-03T12:00:00Z",
            "dimensions": [{"type": "PARKING_TIME", "volume": 0.6667}],
        },
    ],
}


def run(tmp_path: Path, tariff: Any, cdr: Any, *extra: str) -> int:
    (tmp_path / "tariff.json").write_text(json.dumps(tariff))
    (tmp_path / "cdr.json").write_text(json.dumps(cdr))
    return main(
        [
            "tariff",
            "price",
            "--tariff",
            str(tmp_path / "tariff.json"),
            "--cdr",
            str(tmp_path / "cdr.json"),
            *extra,
        ]
    )


def test_command_prints_the_totals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, TARIFF, CDR, "--timezone", "Europe/Vienna") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total_cost"] == {"excl_vat": "7", "incl_vat": "7.9"}
    assert out["total_energy_cost"] == {"excl_vat": "5", "incl_vat": "5.5"}
    assert out["total_time_cost"] == {"excl_vat": "0", "incl_vat": "0"}
    assert out["total_parking_cost"] == {"excl_vat": "1.5", "incl_vat": "1.8"}
    assert out["total_fixed_cost"] == {"excl_vat": "0.5", "incl_vat": "0.6"}
    assert out["total_energy"] == 20
    assert out["total_time"] == pytest.approx(8 / 3)
    assert out["total_parking_time"] == pytest.approx(0.6667)
    assert out["warnings"] == []


def test_command_warns_about_a_period_across_a_tariff_switch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tariff = {
        "currency": "EUR",
        "elements": [
            {
                "price_components": [{"type": "TIME", "price": 5, "step_size": 1}],
                "restrictions": {"end_time": "17:00"},
            },
            {"price_components": [{"type": "TIME", "price": 7, "step_size": 1}]},
        ],
    }
    cdr = {
        "start_date_time": "2019-06-03T14:30:00Z",
        "end_date_time": "2019-06-03T15:30:00Z",
        "charging_periods": [
            {"start_date_time": "2019-06-03T14:30:00Z", "dimensions": [{"type": "TIME", "volume": 1}]}
        ],
    }
    assert run(tmp_path, tariff, cdr, "--timezone", "Europe/Vienna") == 0  # 16:30 to 17:30 local time
    out = json.loads(capsys.readouterr().out)
    assert out["total_time_cost"]["excl_vat"] == "5"
    assert [(w["code"], w["charging_period"], w["at"]) for w in out["warnings"]] == [
        ("period_not_split", 0, "2019-06-03T15:00:00Z")
    ]


def test_prices_stay_exact_decimals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tariff = {
        "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.1, "vat": 19, "step_size": 1}]}],
    }
    cdr = {
        **CDR,
        "charging_periods": [
            {"start_date_time": "2019-06-03T10:00:00Z", "dimensions": [{"type": "ENERGY", "volume": 0.3}]}
        ],
    }
    assert run(tmp_path, tariff, cdr) == 0
    # 300 Wh at 0.1 per kWh is 0.03 exactly (binary floats would give 0.030000000000000002).
    assert json.loads(capsys.readouterr().out)["total_cost"] == {"excl_vat": "0.03", "incl_vat": "0.0357"}


def bad_step(t: dict[str, Any]) -> None:
    t["elements"][2]["price_components"][0]["step_size"] = -5


def bad_time(t: dict[str, Any]) -> None:
    t["elements"][1]["restrictions"] = {"start_time": "24:00"}


def bad_day(t: dict[str, Any]) -> None:
    t["elements"][1]["restrictions"] = {"day_of_week": ["FUNDAY"]}


def bad_date(t: dict[str, Any]) -> None:
    t["elements"][1]["restrictions"] = {"end_date": "2019-02-30"}


def typo(t: dict[str, Any]) -> None:
    t["elements"][1]["restrictions"] = {"start_tme": "10:00"}


def no_elements(t: dict[str, Any]) -> None:
    t["elements"] = []


def reservation_energy(t: dict[str, Any]) -> None:
    t["elements"][1]["restrictions"] = {"reservation": "RESERVATION"}


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        (bad_step, "elements[2].price_components[0].step_size"),
        (bad_time, "elements[1].restrictions.start_time"),
        (bad_day, "elements[1].restrictions.day_of_week[0]"),
        (bad_date, "elements[1].restrictions.end_date"),
        (typo, "elements[1].restrictions.start_tme: Extra inputs are not permitted"),
        (no_elements, "elements: List should have at least 1 item"),
        (
            reservation_energy,
            "elements[1].price_components[0].type: a reservation element can only have FLAT",
        ),
    ],
)
def test_bad_tariff_names_the_field(spoil: Any, expected: str) -> None:
    data = json.loads(json.dumps(TARIFF))
    spoil(data)
    with pytest.raises(BillingInputError) as err:
        parse_tariff(data, "tariff.json")
    assert expected in str(err.value)
    assert str(err.value).startswith("tariff.json")


def test_bad_cdr_names_the_field() -> None:
    data = json.loads(json.dumps(CDR))
    data["charging_periods"][1]["start_date_time"] = "2019-06-03T09:00:00Z"
    with pytest.raises(BillingInputError, match=r"charging_periods\[1\]\.start_date_time"):
        parse_cdr_usage(data, "cdr.json")
    data = json.loads(json.dumps(CDR))
    data["charging_periods"][0]["dimensions"][0]["volume"] = -1
    with pytest.raises(BillingInputError, match=r"charging_periods\[0\]\.dimensions\[0\]\.volume"):
        parse_cdr_usage(data, "cdr.json")
    data["charging_periods"][0]["dimensions"] = [
        {"type": "ENERGY", "volume": 1},
        {"type": "ENERGY", "volume": 2},
    ]
    with pytest.raises(BillingInputError, match=r"dimensions\[1\]\.type: ENERGY is given twice"):
        parse_cdr_usage(data, "cdr.json")


def test_period_without_time_dimensions_is_charging_for_its_whole_length() -> None:
    data = {
        "start_date_time": "2019-06-03T10:00:00",  # no zone designator: UTC, as OCPI says
        "end_date_time": "2019-06-03T11:30:00Z",
        "charging_periods": [
            {
                "start_date_time": "2019-06-03T10:00:00Z",
                "dimensions": [{"type": "ENERGY", "volume": Decimal("7.5")}],
            },
            {
                "start_date_time": "2019-06-03T11:00:00Z",
                "dimensions": [{"type": "PARKING_TIME", "volume": 0.5}],
            },
        ],
    }
    usage = parse_cdr_usage(data)
    assert [p.charging_s for p in usage.periods] == [3600, 0]
    assert [p.parking_s for p in usage.periods] == [0, 1800]
    assert usage.periods[0].energy_wh == 7500


def test_command_errors_exit_non_zero_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(json.dumps(TARIFF))
    bad_step(data)
    assert run(tmp_path, data, CDR) == 1
    err = capsys.readouterr().err
    assert "elements[2].price_components[0].step_size" in err
    assert "Traceback" not in err
    assert run(tmp_path, TARIFF, CDR, "--timezone", "Mars/Olympus") == 1
    assert "--timezone" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("{")
    assert (
        main(
            ["tariff", "price", "--tariff", str(tmp_path / "broken.json"), "--cdr", str(tmp_path / "x.json")]
        )
        == 1
    )
    assert "not valid JSON" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("amount", "text"), [("5.00", "5"), ("0.0290", "0.029"), ("1E+2", "100"), ("0E-8", "0")]
)
def test_amounts_are_plain_decimal_strings(amount: str, text: str) -> None:
    assert decimal_text(Decimal(amount)) == text


DATA = Path(__file__).parent / "data"


def test_documented_example(capsys: pytest.CaptureFixture[str]) -> None:
    # The example of docs/billing.md: 16:10 to 17:00 local off-peak, 17:00 to 18:15 peak, then parked 50 min.
    argv = [
        "tariff",
        "price",
        "--tariff",
        str(DATA / "tariff_time_of_day.json"),
        "--cdr",
        str(DATA / "cdr_evening.json"),
    ]
    assert main([*argv, "--timezone", "Europe/Vienna"]) == 0
    out = json.loads(capsys.readouterr().out)
    # 9.35 kWh × 0.30 + (12.42 + 0.03 rounding to 100 Wh) kWh × 0.45; 50 min parked billed as 60 min × 3.00.
    assert out["total_energy_cost"] == {"excl_vat": "8.4075", "incl_vat": "10.089"}
    assert out["total_parking_cost"] == {"excl_vat": "3", "incl_vat": "3.6"}
    assert out["total_cost"] == {"excl_vat": "11.9075", "incl_vat": "14.289"}
    assert out["total_energy"] == pytest.approx(21.77)
    # The audit trail shows the 30 Wh of step_size rounding billed in the last period with energy.
    assert main([*argv, "--timezone", "Europe/Vienna", "--lines"]) == 0
    lines = json.loads(capsys.readouterr().out)["lines"]
    energy = [
        (x["charging_period"], x["element"], x["used"], x["billed"]) for x in lines if x["type"] == "ENERGY"
    ]
    assert energy == [(0, 2, "9350", "9350"), (1, 1, "12420", "12450")]
    assert [(x["type"], x["used"], x["billed"], x["unit"]) for x in lines if x["kind"] == "parking"] == [
        ("PARKING_TIME", "2999.88", "3600", "s")
    ]
    # Read in UTC, the whole session is off-peak: the time zone matters.
    assert main([*argv, "--timezone", "UTC"]) == 0
    assert json.loads(capsys.readouterr().out)["total_energy_cost"]["excl_vat"] == "6.54"


def test_command_warns_when_the_tariff_is_not_in_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expired = {**TARIFF, "end_date_time": "2019-01-01T00:00:00Z"}
    assert run(tmp_path, expired, CDR) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total_cost"]["excl_vat"] == "7"
    assert [w["code"] for w in out["warnings"]] == ["tariff_not_valid_at_start"]


def test_the_cdr_modules_example_prices_as_it_states(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The shape of OCPI 2.2.1's CDR example: 2.00 €/h charging in 5-minute steps, 10 % VAT, one period of
    # 1.973 h (7102.8 s, billed as 24 steps = 2 h). Fields the pricing does not use are ignored.
    tariff = {
        "id": "12",
        "currency": "EUR",
        "elements": [{"price_components": [{"type": "TIME", "price": 2.00, "vat": 10.0, "step_size": 300}]}],
        "last_updated": "2015-02-02T14:15:01Z",
    }
    cdr = {
        "country_code": "BE",
        "party_id": "BEC",
        "id": "12345",
        "start_date_time": "2015-06-29T21:39:09Z",
        "end_date_time": "2015-06-29T23:37:32Z",
        "cdr_token": {"uid": "012345678", "type": "RFID", "contract_id": "DE8ACC12E46L89"},
        "auth_method": "WHITELIST",
        "cdr_location": {"id": "LOC1", "evse_id": "BE*BEC*E041503003", "country": "BEL"},
        "currency": "EUR",
        "tariffs": [tariff],
        "charging_periods": [
            {
                "start_date_time": "2015-06-29T21:39:09Z",
                "dimensions": [{"type": "TIME", "volume": 1.973}],
                "tariff_id": "12",
            }
        ],
        "total_cost": {"excl_vat": 4.00, "incl_vat": 4.40},
        "total_energy": 15.342,
        "total_time": 1.973,
        "last_updated": "2015-06-29T22:01:13Z",
    }
    assert run(tmp_path, tariff, cdr, "--timezone", "Europe/Brussels") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total_cost"] == {"excl_vat": "4", "incl_vat": "4.4"}
    assert out["total_time_cost"] == out["total_cost"]
