"""The site's billing set-up: tariffs from the site file (inline or in a JSON file) and from the API, with
errors that name the file and the field; token groups and ad-hoc sessions in the selection."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from chargeflow.billing.attribution import Rule
from chargeflow.billing.schema import BillingInputError
from chargeflow.billing.setup import choose, parse_entries, plain_json, rules_from_config
from chargeflow.runtime.app import billing_rules
from chargeflow.site.config import BillingConfig, ConfigError, load_billing

ROOT = Path(__file__).parents[3]
AT = datetime(2026, 11, 2, 12, tzinfo=UTC)


def energy(tariff_id: str, price: str, **extra: object) -> dict[str, object]:
    return {
        "id": tariff_id,
        "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": price, "step_size": 1}]}],
        **extra,
    }


def test_the_example_site_file_reads_its_tariff_file_and_its_inline_tariff() -> None:
    rules = billing_rules(ROOT / "examples" / "site.yaml")
    assert [e.assignment.tariff.id for e in rules.tariffs] == ["workplace", "staff"]
    flat = rules.tariffs[0].assignment.tariff.elements[0].price_components[0]
    assert flat.price == Decimal("0.50")  # read from JSON as an exact decimal
    assert rules.tariffs[0].source["elements"][0]["price_components"][0]["price"] == "0.50"
    assert rules.token_group_of["04A1B2C3D4"] == "staff"
    assert rules.rule is Rule.BUILDING_FIRST


def test_an_invalid_tariff_in_the_site_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    site = (ROOT / "examples" / "site.yaml").read_text(encoding="utf-8")
    (tmp_path / "tariff_workplace.json").write_text(
        json.dumps(energy("x", "0.30", elements=[{"price_components": [{"type": "ENERGY", "price": -1}]}]))
    )
    (tmp_path / "site.yaml").write_text(site)
    with pytest.raises(ConfigError) as err:
        billing_rules(tmp_path / "site.yaml")
    message = str(err.value)
    assert "site.yaml: billing.tariffs[0].tariff" in message
    assert "elements[0].price_components[0].price" in message


def test_a_missing_tariff_file_and_a_wrong_section_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(
        "grid: {max_import_w: 1, max_export_w: 1}\ncircuits: [{id: m, max_current_a: 10}]\n"
        "billing:\n  tariffs: [{file: nope.json}]\n"
    )
    with pytest.raises(ConfigError, match=r"billing.tariffs\[0\].file: cannot read nope.json"):
        load_billing(tmp_path / "site.yaml")
    (tmp_path / "site.yaml").write_text(
        "grid: {max_import_w: 1, max_export_w: 1}\ncircuits: [{id: m, max_current_a: 10}]\n"
        "billing:\n  attribution: evs_last\n  tariffs: [{file: a.json, tariff: {}}]\n"
    )
    with pytest.raises(ConfigError) as err:
        load_billing(tmp_path / "site.yaml")
    assert "billing.attribution" in str(err.value)
    assert "billing.tariffs[0]: Value error, give either file or tariff" in str(err.value)


def test_api_entries_are_checked_and_name_the_field() -> None:
    with pytest.raises(
        BillingInputError, match=r"tariffs\[1\]: 1 problem\(s\)\n  stations: Input should be a valid list"
    ):
        parse_entries([{"tariff": energy("a", "0.3")}, {"tariff": energy("b", "0.3"), "stations": "cp1"}])
    with pytest.raises(BillingInputError, match=r"tariffs\[0\].tariff: 1 problem.*\n  currency"):
        parse_entries([{"tariff": {"elements": energy("a", "1")["elements"]}}])
    with pytest.raises(BillingInputError, match=r"tariffs\[0\].file: give the tariff inline"):
        parse_entries([{"file": "x.json"}])
    with pytest.raises(BillingInputError, match="expected a list"):
        parse_entries({"tariff": energy("a", "1")})


def test_token_groups_ad_hoc_payment_and_station_tariffs_are_chosen() -> None:
    config = BillingConfig.model_validate(
        {
            "tariffs": [
                {"tariff": energy("public", "0.40")},
                {"tariff": energy("cp2", "0.35"), "stations": ["cp2"]},
                {"tariff": energy("fleet", "0.20"), "token_groups": ["fleet"]},
                {"tariff": energy("card", "0.50", type="AD_HOC_PAYMENT")},
            ],
            "token_groups": {"fleet": ["F1"], "terminal": ["PAY"]},
            "ad_hoc_groups": ["terminal"],
        }
    )
    rules = rules_from_config(config)

    def chosen(evse: str, token: str | None) -> str | None:
        entry = choose(rules.tariffs, rules, evse_id=evse, id_token=token, start=AT)
        return entry.assignment.tariff.id if entry else None

    assert chosen("cp1", "ANY") == "public"
    assert chosen("cp2", "ANY") == "cp2"
    assert chosen("cp2", "F1") == "cp2"  # a station and a token group are equally specific: the earlier
    assert chosen("cp1", "F1") == "fleet"
    assert chosen("cp1", "PAY") == "card"
    assert chosen("cp1", None) == "public"


def test_a_token_in_two_groups_is_refused() -> None:
    config = BillingConfig.model_validate({"token_groups": {"a": ["T"], "b": ["T"]}})
    with pytest.raises(BillingInputError, match=r"billing\.token_groups\.b: T is already in a"):
        rules_from_config(config)


def test_plain_json_keeps_decimals_and_yaml_floats_exact() -> None:
    assert plain_json({"a": [Decimal("0.30"), 0.1, 2, "x"]}) == {"a": ["0.30", "0.1", 2, "x"]}
