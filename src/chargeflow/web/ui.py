"""The site owner's dashboard: live flows pushed as server-sent events, stations and their actions,
sessions, accounting with CSV export, the circuit tree — behind a password login with CSRF tokens.

``mount_ui`` adds it, the driver pages (``web.driver``) and the static assets to the FastAPI app that
``create_api`` builds. Everything a page needs is served from here: no CDN, nothing fetched at run time.
(No ``from __future__ import annotations`` here: FastAPI must resolve the route-local dependency alias.)
"""

import asyncio
import csv
import io
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import segno
from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from chargeflow.billing.ports import SessionStart
from chargeflow.billing.service import BillingService
from chargeflow.billing.tariff import Tariff
from chargeflow.csm.model import TransactionRecord
from chargeflow.csm.service import CsmService
from chargeflow.protocols.ocpp.operations import StationOperations
from chargeflow.site.bounds import finite_or_none
from chargeflow.web.auth import OWNER_COOKIE, DriverLinks, LoginThrottled, OwnerAuth, OwnerSession
from chargeflow.web.billing_api import ReportQuery, report_query, report_response
from chargeflow.web.calls import station_call
from chargeflow.web.circuits import circuit_rows
from chargeflow.web.live import ConnectorReading, SiteView
from chargeflow.web.plot import PLOT_POINTS, PlotRange, flows_svg, plot_range
from chargeflow.web.reasons import in_words
from chargeflow.web.session_view import energy_tariff, session_view

HERE = Path(__file__).parent
LOGIN_CSRF_COOKIE = "chargeflow_login_csrf"
_NOT_FLOWS = ("at", "limit_reason")
PAST_SESSIONS = 20  # the most recent ended sessions on the dashboard; the CSV export has them all


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class UiSettings:
    view: SiteView
    owner: OwnerAuth
    links: DriverLinks = field(default_factory=DriverLinks)
    price_per_kwh: Decimal = Decimal("0.30")  # without billing: one price per kWh
    currency: str = "EUR"
    tariff: Tariff = field(init=False)
    push_interval_s: float = 1.0  # at most one server-sent event per second and page
    now: Callable[[], datetime] = wall_clock  # for login sessions: real time, not the simulated clock
    billing: BillingService | None = None  # the site's tariffs, CDRs and reports
    public_url: str | None = None  # where drivers reach these pages (QR codes); None: as this request came

    def __post_init__(self) -> None:
        self.tariff = energy_tariff(self.price_per_kwh, self.currency)

    async def tariff_of(self, tx: TransactionRecord) -> Tariff:
        """The session's tariff: the one billing chose at its start (``billing.selection``)."""
        if self.billing is None:
            return self.tariff
        start = SessionStart(str(tx.id), tx.station_id, tx.id_token, tx.started_at)
        return await self.billing.tariff_of(start)

    async def tariff_at(self, station_id: str, now: datetime) -> Tariff:
        """The tariff a session starting now at ``station_id`` would get (without an id token)."""
        if self.billing is None:
            return self.tariff
        return await self.billing.tariff_of(SessionStart("", station_id, None, now))


def templates() -> Jinja2Templates:
    pages = Jinja2Templates(directory=HERE / "templates")  # autoescapes .html
    pages.env.filters["segment"] = segment
    return pages


def segment(value: object) -> str:
    """A value as one segment of a URL path: a station id may hold "/", "?", "#", "%" or spaces (OCPP
    allows any printable characters), which must not end the segment or start a query in a link."""
    return quote(str(value), safe="")


def script_json(value: object) -> str:
    """JSON to put inside <script type="application/json">: no "<" can close the element."""
    return json.dumps(value).replace("<", "\\u003c")


def _set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name, value, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/"
    )


def mount_ui(
    app: FastAPI,
    service: CsmService,
    operations: StationOperations,
    settings: UiSettings,
    new_request_id: Callable[[], int],
    admin_token: str = "",
) -> None:
    from chargeflow.web.driver import driver_router

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(owner_router(service, operations, settings, new_request_id))
    app.include_router(driver_router(service, operations, settings, new_request_id, admin_token))


def owner_router(
    service: CsmService,
    operations: StationOperations,
    settings: UiSettings,
    new_request_id: Callable[[], int],
) -> APIRouter:
    router = APIRouter()
    pages = templates()
    view = settings.view
    repository = service.repository

    def owner(request: Request) -> OwnerSession:
        found = settings.owner.session(request.cookies.get(OWNER_COOKIE), settings.now())
        if found is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "owner login required")
        return found

    Owner = Annotated[OwnerSession, Depends(owner)]
    ChartRange = Annotated[str, Query(alias="range")]  # ``web.plot.RANGES``

    def checked(session: OwnerSession, csrf: str | None) -> None:
        if not settings.owner.csrf_ok(session, csrf):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")

    @router.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/dashboard", status.HTTP_303_SEE_OTHER)

    def login_form(request: Request, failed: bool, retry_after_s: int | None = None) -> HTMLResponse:
        token = secrets.token_urlsafe(32)  # double-submit: the form's copy must match the cookie's
        context = {"csrf": token, "failed": failed, "retry_after_s": retry_after_s}
        page = pages.TemplateResponse(request, "login.html", context)
        _set_cookie(request, page, LOGIN_CSRF_COOKIE, token)
        return page

    @router.get("/login", include_in_schema=False)
    async def login_page(request: Request, failed: bool = False) -> HTMLResponse:
        return login_form(request, failed)

    @router.post("/login", include_in_schema=False, response_model=None)
    async def login(
        request: Request, password: Annotated[str, Form()], csrf: Annotated[str, Form()]
    ) -> Response:
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not secrets.compare_digest(expected, csrf):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
        client = request.client.host if request.client is not None else ""
        try:
            session_id = await settings.owner.login_async(password, settings.now(), client)
        except LoginThrottled as exc:
            page = login_form(request, False, exc.retry_after_s)
            page.status_code = status.HTTP_429_TOO_MANY_REQUESTS
            page.headers["Retry-After"] = str(exc.retry_after_s)
            return page
        if session_id is None:
            return RedirectResponse("/login?failed=true", status.HTTP_303_SEE_OTHER)
        response = RedirectResponse("/dashboard", status.HTTP_303_SEE_OTHER)
        _set_cookie(request, response, OWNER_COOKIE, session_id)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return response

    @router.post("/logout", include_in_schema=False)
    async def logout(request: Request, session: Owner, csrf: Annotated[str, Form()]) -> RedirectResponse:
        checked(session, csrf)
        settings.owner.logout(request.cookies.get(OWNER_COOKIE))
        response = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
        response.delete_cookie(OWNER_COOKIE, path="/")
        return response

    def chart_range(name: str) -> PlotRange:
        try:
            return plot_range(name, view.now(), view.site.timezone)
        except ValueError as err:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None

    @router.get("/dashboard", include_in_schema=False, response_model=None)
    async def dashboard(request: Request, range_: ChartRange = "hours") -> Response:
        session = settings.owner.session(request.cookies.get(OWNER_COOKIE), settings.now())
        if session is None:
            return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
        site = view.site
        chart = chart_range(range_)
        state = await dashboard_state()
        return pages.TemplateResponse(
            request,
            "dashboard.html",
            {
                "csrf": session.csrf,
                "site": site,
                "state": script_json(state),
                "warnings": state["warnings"],
                "billing": settings.billing is not None,
                "chart": chart,
            },
        )

    async def billed(transaction_id: int) -> str:
        """What the session's CDR bills, VAT included where known, to the cent; "" without a CDR."""
        cdr = await settings.billing.store.get_cdr(str(transaction_id)) if settings.billing else None
        if cdr is None:
            return ""
        amount = cdr.cost.incl_vat if cdr.cost.incl_vat is not None else cdr.cost.excl_vat
        return f"{amount.quantize(Decimal('0.01'), ROUND_HALF_UP)} {cdr.currency}"

    async def dashboard_state() -> dict[str, Any]:
        site = view.site
        history = view.history()
        latest = history[-1] if history else None
        step = view.charging()
        now = view.now()
        stations = []
        limits = {(lim.station_id, lim.evse_id): lim for lim in (step.limits if step else ())}
        running = await repository.list_transactions(active=True)
        charging = {(tx.station_id, tx.evse_id) for tx in running}

        def reading(station_id: str, evse_id: int) -> ConnectorReading | None:
            # a meter's last reading outlives its session: only a running session's counts as present
            return view.reading(station_id, evse_id) if (station_id, evse_id) in charging else None

        for record in await repository.list_stations():
            sid = record.station_id
            statuses = await repository.connector_statuses(sid)
            # a station with several EVSEs: each one's limit and reason, its power their sum
            evse_limits = sorted((e, lim) for (s, e), lim in limits.items() if s == sid)
            lim = evse_limits[0][1] if evse_limits else None
            several = len(evse_limits) > 1
            present = [
                r for e in sorted({e for s, e in charging if s == sid} | {1}) if (r := reading(sid, e))
            ]
            power = [w for r in present if (w := finite_or_none(r.power_w)) is not None]
            last = max((s.timestamp for s in statuses if s.timestamp), default=None)
            last_seen = max(
                (t for t in (last, record.last_heartbeat_at, record.last_boot_at) if t), default=None
            )
            stations.append(
                {
                    "id": sid,
                    "connected": operations.is_connected(sid),
                    "ocpp_version": record.ocpp_version,
                    "connectors": [f"{s.connector_id}: {s.status}" for s in statuses],
                    "limit_a": lim.current_a if lim else None,
                    "limit_text": " · ".join(f"{e}: {x.current_a:.1f} A" for e, x in evse_limits)
                    if several
                    else None,
                    "reason": " · ".join(f"{e}: {in_words(x.reason)}" for e, x in evse_limits)
                    if several
                    else (in_words(lim.reason) if lim else ""),
                    "power_w": sum(power) if power else None,
                    "last_message": last_seen.isoformat() if last_seen else None,
                }
            )
        sessions = []
        for tx in running:
            tariff = await settings.tariff_of(tx)
            sv = await asyncio.to_thread(  # the priced estimate is work for a thread, not the loop
                session_view, tx, step, view.reading(tx.station_id, tx.evse_id), view.preferences_of(tx),
                now, tariff, ZoneInfo(site.timezone),
            )  # fmt: skip
            sessions.append(
                {
                    "id": sv.id,
                    "station_id": sv.station_id,
                    "id_token": sv.id_token,
                    "state": sv.state_words,
                    "power_w": sv.power_w,
                    "energy_wh": sv.energy_wh,
                    "expected_wh": sv.expected_wh,
                    "needed_wh": sv.preferences.needed_wh,
                    "departure": sv.preferences.departure.isoformat(),
                    "started_at": sv.started_at.isoformat(),
                    "cost": f"{sv.cost} {tariff.currency}",
                    "link": f"/charge/{segment(sv.station_id)}/session/{sv.id}"
                    f"?s={settings.links.secret(sv.id)}",
                    "code": settings.links.code(sv.id),
                }
            )
        past = []
        ended = [tx for tx in await repository.list_transactions(active=False) if tx.stopped_at is not None]
        for tx in sorted(ended, key=lambda t: t.stopped_at or t.started_at, reverse=True)[:PAST_SESSIONS]:
            prefs = view.preferences_of(tx)
            energy = max(tx.energy_wh or 0, 0)
            past.append(
                {
                    "id": tx.id,
                    "station_id": tx.station_id,
                    "id_token": tx.id_token,
                    "energy_wh": energy,
                    "duration_s": ((tx.stopped_at or tx.started_at) - tx.started_at).total_seconds(),
                    "needed_wh": prefs.needed_wh,
                    "needs_met": energy >= prefs.needed_wh,
                    "stopped_at": (tx.stopped_at or tx.started_at).isoformat(),
                    "billed": await billed(tx.id),
                }
            )
        return {
            "now": now.isoformat(),
            "past": past,
            # the powers only (the reason is grant_reason's, in words): the state's fields stay as they were
            "flows": None
            if latest is None
            else {k: v for k, v in asdict(latest).items() if k not in _NOT_FLOWS},
            "grid_limit_w": site.grid.max_import_w,
            "grant_reason": in_words(step.fallback) if step and step.fallback else "",
            "warnings": [
                f"Station {station_id} refuses every charging limit: it charges outside the site's control"
                for station_id in (step.refusing if step else ())
            ],
            "stations": stations,
            "sessions": sessions,
            "circuits": [asdict(row) for row in circuit_rows(site, reading)],
            "samples": len(history),
        }

    @router.get("/dashboard/state.json")
    async def state_json(_: Owner) -> dict[str, Any]:
        return await dashboard_state()

    @router.get("/dashboard/events")
    async def events(request: Request, _: Owner) -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            version = -1
            while not await request.is_disconnected():
                version = await view.wait_newer(version, 15.0)
                yield f"event: state\ndata: {json.dumps(await dashboard_state())}\n\n"
                await asyncio.sleep(settings.push_interval_s)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    @router.get("/dashboard/stations/{station_id}/qr.svg")
    async def station_qr(request: Request, station_id: str, _: Owner) -> Response:
        """The QR code to stick on the station: it opens the station's driver page."""
        if await repository.get_station(station_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no station {station_id}")
        path = f"/charge/{segment(station_id)}"  # url_for would leave "#", "?" and "%" as they are
        # behind a proxy or a public name: the address drivers use
        base = settings.public_url if settings.public_url is not None else str(request.base_url)
        url = base.rstrip("/") + path
        out = io.BytesIO()
        segno.make(url, error="m").save(out, kind="svg", scale=6, title=f"Charge at {station_id}: {url}")
        return Response(out.getvalue(), media_type="image/svg+xml")

    @router.get("/dashboard/plot.svg")
    async def plot(_: Owner, range_: ChartRange = "hours") -> Response:
        """The flows of the last hours (from memory), today, yesterday or the last 7 days (from the
        database, averaged down to ``PLOT_POINTS``); days begin at midnight at the site."""
        chart = chart_range(range_)
        if chart.name == "hours":
            samples = view.history()
        else:
            samples = await view.history_between(chart.start, chart.end, PLOT_POINTS)
        site = view.site
        # the main fuse as power: its weakest phase at the site's voltage, on all three phases
        fuse_w = min(site.root.fuse_a) * site.voltage_v * 3
        svg = await asyncio.to_thread(
            flows_svg, samples, site.grid.max_import_w, site.timezone, fuse_w, chart
        )
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    @router.post("/dashboard/stations/{station_id}/{action}")
    async def station_action(
        station_id: str,
        action: str,
        session: Owner,
        csrf: Annotated[str, Form()],
        id_token: Annotated[str, Form()] = "owner",
        transaction_id: Annotated[str, Form()] = "",
    ) -> dict[str, Any]:
        checked(session, csrf)
        if action == "reset":
            answer = await station_call(station_id, "Reset", operations.reset(station_id, False))
        elif action == "unlock":
            answer = await station_call(station_id, "UnlockConnector", operations.unlock(station_id, 1))
        elif action == "remote-start":
            call = operations.remote_start(station_id, id_token, 1, new_request_id())
            answer = await station_call(station_id, "RemoteStart", call)
        elif action == "remote-stop":
            running = await repository.list_transactions(station_id, active=True)
            if not running:
                raise HTTPException(status.HTTP_409_CONFLICT, f"no session runs on {station_id}")
            tx = running[0]
            answer = await station_call(
                station_id, "RemoteStop", operations.remote_stop(station_id, tx.external_id or str(tx.id))
            )
        else:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no action {action}")
        return answer.model_dump()

    @router.get("/dashboard/report")
    async def report(_: Owner, q: Annotated[ReportQuery, Depends(report_query)]) -> Response:
        """The accounting report of ``GET /api/reports`` for the logged-in owner (the download button)."""
        if settings.billing is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "this site has no billing")
        return await report_response(settings.billing, q)

    @router.get("/dashboard/accounting.csv")
    async def accounting_csv(
        _: Owner, by: str = "station", since: date | None = None, until: date | None = None
    ) -> Response:
        """Sessions and energy per station, id token, day or month, of the sessions started in
        [since, until] (dates at the site, both included), at one price per kWh: for a site without
        billing; with billing, ``/dashboard/report`` has the CDRs' prices and the energy sources."""
        if by not in ("station", "id_token", "day", "month"):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "by: station, id_token, day or month")
        zone = ZoneInfo(view.site.timezone)
        transactions = await repository.list_transactions()

        def table() -> str:  # years of sessions: summed on a worker thread, not the loop (issue 13, item 8)
            totals: dict[str, list[int]] = {}
            for tx in transactions:
                day = tx.started_at.astimezone(zone).date()
                if (since is not None and day < since) or (until is not None and day > until):
                    continue
                key = {
                    "station": tx.station_id,
                    "id_token": tx.id_token or "",
                    "day": day.isoformat(),
                    "month": day.isoformat()[:7],
                }[by]
                row = totals.setdefault(key, [0, 0])
                row[0] += 1
                row[1] += max(tx.energy_wh or 0, 0)
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow([by, "sessions", "energy_wh", "cost"])
            for key, (count, energy) in sorted(totals.items()):
                cost = (settings.price_per_kwh * Decimal(energy) / 1000).quantize(Decimal("0.01"))
                writer.writerow([key, count, energy, cost])
            return out.getvalue()

        return Response(
            await asyncio.to_thread(table),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="accounting-by-{by}.csv"'},
        )

    return router
