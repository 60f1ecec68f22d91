"""Which of a site's tariffs applies to a session: per station, per id-token group, ad hoc for card payment.

A site offers several OCPI tariffs, each assigned to some stations (EVSEs) and some id-token groups, or to
all of them. When a session starts (OCPI: the driver accepts the tariff valid at the start), the tariff is
chosen once:

* ad-hoc sessions (card payment at the station) take only ``AD_HOC_PAYMENT`` tariffs; sessions with an id
  token take only the others;
* a session with a charging-profile preference (OCPI ``profile_type``: CHEAP, FAST, GREEN) takes a tariff
  of that profile type if one applies, otherwise a REGULAR or untyped one;
* the tariff must be valid at the start (``start_date_time`` inclusive, ``end_date_time`` exclusive);
* among those, the most specific assignment wins: station and token group named beats one of them named
  beats neither; on a tie, the earlier assignment in the site's list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from chargeflow.billing.tariff import Tariff, TariffType

_PROFILES = (TariffType.PROFILE_CHEAP, TariffType.PROFILE_FAST, TariffType.PROFILE_GREEN)


@dataclass(frozen=True, slots=True)
class TariffAssignment:
    tariff: Tariff
    evse_ids: frozenset[str] = field(default_factory=frozenset)  # empty: every station of the site
    token_groups: frozenset[str] = field(default_factory=frozenset)  # empty: every id-token group


def select_tariff(
    assignments: Sequence[TariffAssignment],
    *,
    evse_id: str,
    token_group: str | None,
    start: datetime,
    ad_hoc: bool = False,
    profile: TariffType | None = None,
) -> Tariff | None:
    """The tariff of a session starting at ``start``; ``None`` when the site has none for it."""
    if profile is not None and profile not in _PROFILES:
        raise ValueError(f"profile must be one of {', '.join(_PROFILES)}, not {profile}")
    candidates = [
        (i, a) for i, a in enumerate(assignments) if _applies(a, evse_id, token_group, start, ad_hoc)
    ]
    if profile is not None:
        preferred = [(i, a) for i, a in candidates if a.tariff.type is profile]
        candidates = preferred or [(i, a) for i, a in candidates if a.tariff.type not in _PROFILES]
    else:
        candidates = [(i, a) for i, a in candidates if a.tariff.type not in _PROFILES]
    if not candidates:
        return None
    _, best = min(candidates, key=lambda ia: (-_specificity(ia[1]), ia[0]))
    return best.tariff


def _applies(
    a: TariffAssignment, evse_id: str, token_group: str | None, start: datetime, ad_hoc: bool
) -> bool:
    t = a.tariff
    if (t.type is TariffType.AD_HOC_PAYMENT) != ad_hoc:
        return False
    if not t.valid_at(start):
        return False
    if a.evse_ids and evse_id not in a.evse_ids:
        return False
    return not a.token_groups or (token_group is not None and token_group in a.token_groups)


def _specificity(a: TariffAssignment) -> int:
    return bool(a.evse_ids) + bool(a.token_groups)
