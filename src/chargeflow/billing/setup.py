"""A site's billing set-up: its tariffs with their assignments, id-token groups and the attribution rule.

Tariffs come from two places: the site file's ``billing.tariffs`` (fixed while the site runs) and those the
owner manages through the API (``PUT /api/tariffs``, stored in the database). Both are lists of the same
entries — an OCPI 2.2.1 Tariff object and the stations and token groups it is for — parsed here once, so
that an invalid tariff is refused with the field that is wrong. The API's tariffs come first in the
site's list: on a tie in ``selection.select_tariff`` the one the owner set last wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from chargeflow.billing.attribution import Rule
from chargeflow.billing.schema import BillingInputError, parse_tariff
from chargeflow.billing.selection import TariffAssignment, select_tariff
from chargeflow.billing.tariff import PriceComponent, Tariff, TariffDimensionType, TariffElement
from chargeflow.site.config import BillingConfig, TariffConfig, format_validation_error


@dataclass(frozen=True, slots=True)
class TariffEntry:
    """A tariff with whom it is for, and the OCPI JSON it was read from (decimals as strings)."""

    assignment: TariffAssignment
    source: dict[str, Any]  # the OCPI tariff object, JSON-ready: what is stored and shown
    origin: str = "site"  # "site" (the site file) or "api"

    def as_json(self) -> dict[str, Any]:
        return {
            "tariff": self.source,
            "stations": sorted(self.assignment.evse_ids),
            "token_groups": sorted(self.assignment.token_groups),
            "origin": self.origin,
        }


@dataclass(frozen=True, slots=True)
class BillingRules:
    """Everything billing needs from the site's configuration, frozen."""

    tariffs: tuple[TariffEntry, ...] = ()  # the site file's
    token_group_of: Mapping[str, str] = field(default_factory=dict)  # id token → its group
    ad_hoc_groups: frozenset[str] = frozenset()
    rule: Rule = Rule.BUILDING_FIRST
    currency: str = "EUR"
    meter_keys: Mapping[str, str] = field(default_factory=dict)  # station id → OCMF public key


def plain_json(value: Any) -> Any:
    """``value`` with every ``Decimal`` as its exact text, so that it can be stored as JSON."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    if isinstance(value, float):
        return str(Decimal(repr(value)))  # a YAML float: its shortest exact text, never its binary value
    return value


def entry_of(config: TariffConfig, source: str, origin: str) -> TariffEntry:
    if config.tariff is None:
        raise BillingInputError(f"{source}.file: a tariff file must be read before it is parsed")
    data = plain_json(config.tariff)
    tariff = parse_tariff(data, f"{source}.tariff")
    assignment = TariffAssignment(tariff, frozenset(config.stations), frozenset(config.token_groups))
    return TariffEntry(assignment, data, origin)


def rules_from_config(config: BillingConfig, source: str = "site") -> BillingRules:
    """The site file's ``billing:`` section as rules; an invalid tariff raises ``BillingInputError``
    naming the file and the field (``site.yaml: billing.tariffs[1].tariff: … elements[0]…``)."""
    token_group_of: dict[str, str] = {}
    for group, tokens in config.token_groups.items():
        for token in tokens:
            if token in token_group_of:
                raise BillingInputError(
                    f"{source}: billing.token_groups.{group}: {token} is already in {token_group_of[token]}"
                )
            token_group_of[token] = group
    return BillingRules(
        tariffs=tuple(
            entry_of(t, f"{source}: billing.tariffs[{i}]", "site") for i, t in enumerate(config.tariffs)
        ),
        token_group_of=token_group_of,
        ad_hoc_groups=frozenset(config.ad_hoc_groups),
        rule=Rule(config.attribution),
        currency=config.currency,
        meter_keys=dict(config.meter_keys),
    )


def parse_entries(data: Any, source: str = "tariffs") -> list[TariffEntry]:
    """The body of ``PUT /api/tariffs``: a list of ``{tariff, stations, token_groups}``."""
    if not isinstance(data, list):
        raise BillingInputError(f"{source}: expected a list of {{tariff, stations, token_groups}}")
    entries = []
    for i, item in enumerate(data):
        try:
            config = TariffConfig.model_validate(item)
        except ValidationError as err:
            raise BillingInputError(format_validation_error(f"{source}[{i}]", err)) from None
        if config.file is not None:
            raise BillingInputError(f"{source}[{i}].file: give the tariff inline")
        entries.append(entry_of(config, f"{source}[{i}]", "api"))
    return entries


def free_tariff(currency: str) -> Tariff:
    """What a session costs where no tariff applies: nothing (its CDR still states the energy)."""
    return Tariff(
        currency, (TariffElement((PriceComponent(TariffDimensionType.ENERGY, Decimal(0), Decimal(0), 1),)),)
    )


def choose(
    entries: Sequence[TariffEntry],
    rules: BillingRules,
    *,
    evse_id: str,
    id_token: str | None,
    start: datetime,
) -> TariffEntry | None:
    """The entry ``selection.select_tariff`` picks for a session starting at ``start``."""
    group = rules.token_group_of.get(id_token) if id_token is not None else None
    ad_hoc = group is not None and group in rules.ad_hoc_groups
    chosen = select_tariff(
        [e.assignment for e in entries], evse_id=evse_id, token_group=group, start=start, ad_hoc=ad_hoc
    )
    return next((e for e in entries if e.assignment.tariff is chosen), None)
