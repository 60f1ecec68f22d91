"""Billing in the REST API: the site's tariffs, the CDRs and the accounting reports.

``GET /api/tariffs`` lists every tariff (the API's, then the site file's, with ``origin``); ``PUT
/api/tariffs`` replaces the API's, all or nothing, and refuses an invalid one with 422 naming the field.
``GET /api/cdrs`` and ``/api/cdrs/{id}`` give OCPI 2.2.1 CDR objects; ``GET /api/reports`` sums them per
period, station or id token with the energy by source, as CSV or JSON. The admin token guards all of it
(the router is mounted under ``/api`` with the bearer check).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status

from chargeflow.billing.attribution import Shares, Source, capped
from chargeflow.billing.ports import CdrRecord
from chargeflow.billing.report import Key, report_csv, report_json
from chargeflow.billing.schema import BillingInputError
from chargeflow.billing.service import BillingService

Period = Literal["day", "month"]
Group = Literal["station", "id_token", "none"]
Format = Literal["csv", "json"]


@dataclass(frozen=True, slots=True)
class ReportQuery:
    period: Period
    group: Group
    format: Format
    since: date | None
    until: date | None


def report_query(
    period: Period = "month",
    group: Group = "station",
    format: Format = "json",
    since: Annotated[date | None, Query(alias="from")] = None,
    until: Annotated[date | None, Query(alias="to")] = None,
) -> ReportQuery:
    """The report's query parameters, the same for the API and the dashboard's download."""
    return ReportQuery(period, group, format, since, until)


async def report_response(billing: BillingService, q: ReportQuery) -> Response:
    """The report as a download: one row per period (site dates) and group, with the energy by source."""
    by = [Key(q.period)] + ([Key(q.group)] if q.group != "none" else [])
    rows = await billing.report(by, q.since, q.until)
    name = f"report-{q.period}" + (f"-by-{q.group}" if q.group != "none" else "")
    # the download is written on a worker thread, as the report was summed (issue 13, item 8)
    if q.format == "csv":
        return Response(
            await asyncio.to_thread(report_csv, rows, by),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return Response(
        await asyncio.to_thread(lambda: json.dumps({"by": [str(k) for k in by], "rows": report_json(rows)})),
        media_type="application/json",
        headers={"Content-Disposition": f'inline; filename="{name}.json"'},
    )


def cdr_out(record: CdrRecord, sources: dict[str, int] | None) -> dict[str, Any]:
    """The stored OCPI CDR, with the session's energy by source (Wh) under the ``chargeflow`` key."""
    out = dict(record.ocpi)
    extra = dict(out.get("chargeflow") or {})
    extra["energy_sources_wh"] = sources
    out["chargeflow"] = extra
    return out


def billing_router(billing: BillingService) -> APIRouter:
    router = APIRouter(tags=["billing"])

    @router.get("/tariffs")
    async def list_tariffs() -> list[dict[str, Any]]:
        return [e.as_json() for e in await billing.entries()]

    @router.put(
        "/tariffs",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}},
            }
        },
    )
    async def put_tariffs(request: Request) -> list[dict[str, Any]]:
        """Replace the API's tariffs with a list of ``{"tariff": {OCPI Tariff}, "stations": [...],
        "token_groups": [...]}``. Numbers are read as exact decimals."""
        try:
            data = json.loads(await request.body(), parse_float=Decimal)
        except ValueError as err:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"not JSON: {err}") from None
        try:
            await billing.set_api_tariffs(data)
        except BillingInputError as err:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
        return [e.as_json() for e in await billing.entries()]

    @router.get("/cdrs")
    async def list_cdrs(
        since: Annotated[date | None, Query(alias="from")] = None,
        until: Annotated[date | None, Query(alias="to")] = None,
    ) -> list[dict[str, Any]]:
        """CDRs of the sessions started on the site's dates [from, to], both included."""
        shares = await billing.store.shares()
        return [
            cdr_out(c, _wh(shares.get(c.session_id), c.energy_wh)) for c in await billing.cdrs(since, until)
        ]

    @router.get("/cdrs/{cdr_id}")
    async def get_cdr(cdr_id: str) -> dict[str, Any]:
        found = await billing.store.get_cdr(cdr_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no CDR {cdr_id}")
        shares = await billing.store.shares()
        return cdr_out(found, _wh(shares.get(found.session_id), found.energy_wh))

    @router.get("/reports")
    async def reports(q: Annotated[ReportQuery, Depends(report_query)]) -> Response:
        """Accounting per period and station or id token: sessions, energy with its PV, battery and grid
        shares (pv_wh, battery_wh, grid_wh, unattributed_wh) and the cost, of the sessions started on the
        site's dates [from, to]."""
        return await report_response(billing, q)

    return router


def _wh(shares: Shares | None, energy_wh: int) -> dict[str, int] | None:
    """The session's source totals as the reports count them (never more than the CDR's energy)."""
    if shares is None:
        return None
    fitted = capped(shares, energy_wh)
    return {str(s): fitted.of(s) for s in Source}
