"""The driver's page (phone-first) and the preferences endpoint behind it (TF-EVC ChPr).

``/charge/{station_id}`` is what a station's QR code opens. Whoever scans it may start charging where the
site charges for free, but sees a running session only with that session's link secret, or after
entering the session's short code (shown on the station's display or printed on the receipt), which
leads to the link — never with the id token, which is printed on a card and often guessable. Wrong
codes are throttled per client address and per station (``csm.throttle``). The forms of the station's
page carry a CSRF token bound to a cookie (double submit, as the owner's login): a remote start with
an id token cannot be sent from another site. Everything works without JavaScript. The page shows the state,
the power and why it is limited, the energy so far and expected by departure, and the cost; the driver
sets ΔE_min, ΔE_max (in kWh, or as a target state of charge of a battery size), the departure and the
two price caps. ``PUT /api/sessions/{id}/preferences`` is the same for apps and other paths.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Header, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chargeflow.billing.tariff import Tariff
from chargeflow.csm.demand import Preferences
from chargeflow.csm.model import TransactionRecord
from chargeflow.csm.service import CsmService
from chargeflow.csm.throttle import Budget, FailureBudget
from chargeflow.protocols.ocpp.operations import StationOperations
from chargeflow.site import bounds
from chargeflow.store.billing import register_readings
from chargeflow.web.calls import station_call
from chargeflow.web.session_view import SessionView, session_view
from chargeflow.web.starts import StartsFromHere
from chargeflow.web.tariff_words import tariff_words
from chargeflow.web.ui import UiSettings, script_json, segment, templates

DRIVER_CSRF_COOKIE = "chargeflow_driver_csrf"
START_COOKIE = "chargeflow_start"  # the ticket of a start from this browser (``web.starts``)
# Wrong session codes: a driver mistypes once or twice; a guesser needs ~10^8 / sessions running tries
FIND_PER_ADDRESS = Budget(burst=5, refill_s=60.0)
FIND_PER_STATION = Budget(burst=10, refill_s=30.0)


class PreferencesIn(BaseModel):
    """ΔE_min and ΔE_max in Wh, the departure, and C_max (a) and (b) per kWh."""

    model_config = ConfigDict(allow_inf_nan=False)

    # Bounded (#13): a wished_wh of 10^400 raised OverflowError in the control step and ended site control.
    needed_wh: int = Field(ge=0, le=bounds.MAX_ENERGY_WH)
    wished_wh: int = Field(ge=0, le=bounds.MAX_ENERGY_WH)
    departure: datetime
    price_cap_needed_per_kwh: Decimal | None = Field(default=None, ge=0, le=bounds.MAX_PRICE_PER_KWH)
    price_cap_wished_per_kwh: Decimal | None = Field(default=None, ge=0, le=bounds.MAX_PRICE_PER_KWH)

    def to_preferences(self, now: datetime) -> Preferences:
        if self.departure.tzinfo is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "departure needs a time zone")
        try:
            bounds.check_time(self.departure, now, "departure")
        except (bounds.OutOfBounds, OverflowError) as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc) or "departure") from None
        if self.wished_wh < self.needed_wh:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "wished_wh must be ≥ needed_wh")
        return Preferences(
            self.needed_wh,
            self.wished_wh,
            self.departure,
            self.price_cap_needed_per_kwh,
            self.price_cap_wished_per_kwh,
        )


def _kwh_to_wh(text: str, field: str) -> int:
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{field}: a number of kWh") from None
    if not value.is_finite() or not 0 <= value * 1000 <= bounds.MAX_ENERGY_WH:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"{field}: 0 to {bounds.MAX_ENERGY_WH // 1000} kWh"
        )
    return int(value * 1000)


def _cap(text: str) -> Decimal | None:
    try:
        cap = Decimal(text.replace(",", ".")) if text.strip() else None
    except InvalidOperation:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a price cap is a number") from None
    if cap is not None and not (cap.is_finite() and 0 <= cap <= bounds.MAX_PRICE_PER_KWH):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"a price cap is 0 to {bounds.MAX_PRICE_PER_KWH} per kWh"
        )
    return cap


def departure_at(clock_time: str, now: datetime, tz: str) -> datetime:
    """The next time the site's clock shows ``HH:MM`` (today, or tomorrow when that has passed)."""
    try:
        hours, minutes = (int(part) for part in clock_time.split(":")[:2])
        wall = time(hours, minutes)
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "departure: HH:MM") from None
    local = now.astimezone(ZoneInfo(tz))
    at = datetime.combine(local.date(), wall, local.tzinfo)
    return at if at > now else at + timedelta(days=1)


def driver_router(
    service: CsmService,
    operations: StationOperations,
    settings: UiSettings,
    new_request_id: Callable[[], int],
    admin_token: str = "",
) -> APIRouter:
    router = APIRouter()
    pages = templates()
    view = settings.view
    repository = service.repository
    remembered: dict[str, Preferences] = {}  # the last choices per id token at this site
    wrong_by_address = FailureBudget(FIND_PER_ADDRESS)
    wrong_by_station = FailureBudget(FIND_PER_STATION)
    starts = StartsFromHere()

    async def own_session(station_id: str, session_id: int, secret: str | None) -> TransactionRecord:
        tx = await repository.get_transaction(session_id)
        # one answer for a wrong secret and a missing session: the page tells nothing to a guesser
        if tx is None or tx.station_id != station_id or not settings.links.allows(session_id, secret):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "this link does not open a session here")
        return tx

    async def current(tx: TransactionRecord) -> tuple[SessionView, Tariff]:
        """The session as the driver sees it, priced with its own tariff (``billing.selection`` at its
        start) by ``billing.estimate``."""
        tariff = await settings.tariff_of(tx)
        now = view.now()
        last = tx.stopped_at or max(now, tx.started_at)
        samples = await repository.meter_values(tx.id)
        step, reading, prefs = (
            view.charging(),
            view.reading(tx.station_id, tx.evse_id),
            view.preferences_of(tx),
        )
        # A long session's readings, priced by the billing engine, are work for a thread, not the event loop
        # that serves every station (issue 13, item 8).
        sv = await asyncio.to_thread(
            lambda: session_view(
                tx, step, reading, prefs, now, tariff, ZoneInfo(view.site.timezone),
                register_readings(tx, samples, last),
            )
        )  # fmt: skip
        return sv, tariff

    async def current_json(tx: TransactionRecord) -> dict[str, Any]:
        sv, tariff = await current(tx)
        return as_json(sv, tariff.currency)

    def as_json(sv: SessionView, currency: str) -> dict[str, Any]:
        return {
            "id": sv.id,
            "state": sv.state,
            "state_words": sv.state_words,
            "power_w": sv.power_w,
            "limit_a": sv.limit_a,
            "reason": sv.reason,
            "reason_words": sv.reason_words,
            "energy_wh": sv.energy_wh,
            "expected_wh": sv.expected_wh,
            "needed_wh": sv.preferences.needed_wh,
            "wished_wh": sv.preferences.wished_wh,
            "departure": sv.preferences.departure.isoformat(),
            "cost": f"{sv.cost} {currency}",
            "expected_cost": f"{sv.expected_cost} {currency}",
            "soc_pct": sv.soc_pct,
        }

    def cookie(request: Request, response: Response, name: str, value: str) -> None:
        response.set_cookie(
            name,
            value,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/charge",
        )

    def link_to(tx: TransactionRecord) -> str:
        return f"/charge/{segment(tx.station_id)}/session/{tx.id}?s={settings.links.secret(tx.id)}"

    async def station_form(
        request: Request,
        station_id: str,
        answer: str = "",
        retry_after_s: int | None = None,
        starting: bool = False,
    ) -> HTMLResponse:
        if await repository.get_station(station_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no station {station_id}")
        running = await repository.list_transactions(station_id, active=True)
        prices = tariff_words(await settings.tariff_at(station_id, view.now()))
        # one token per browser, kept while it has one: several tabs of the page all stay valid
        token = request.cookies.get(DRIVER_CSRF_COOKIE) or secrets.token_urlsafe(32)
        page = pages.TemplateResponse(
            request,
            "station.html",
            {
                "station_id": station_id,
                "busy": bool(running),
                "answer": answer,
                "prices": prices,
                "csrf": token,
                "retry_after_s": retry_after_s,
                "starting": starting,
            },
        )
        cookie(request, page, DRIVER_CSRF_COOKIE, token)
        return page

    def same_origin_form(request: Request, csrf: str) -> None:
        expected = request.cookies.get(DRIVER_CSRF_COOKIE, "")
        if not expected or not secrets.compare_digest(expected.encode(), csrf.encode()):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token: reload the page")

    @router.get("/charge/{station_id}", include_in_schema=False, response_model=None)
    async def station_page(request: Request, station_id: str, answer: str = "") -> Response:
        """The station's page; to the browser that started charging here, its session once it runs."""
        ticket = request.cookies.get(START_COOKIE)
        now = settings.now().timestamp()
        if starts.pending(ticket, station_id, now):
            running = await repository.list_transactions(station_id, active=True)
            tx = starts.session_of(ticket, station_id, running, now)
            if tx is not None:
                response = RedirectResponse(link_to(tx), status.HTTP_303_SEE_OTHER)
                response.delete_cookie(START_COOKIE, path="/charge")
                return response
            return await station_form(request, station_id, answer, starting=True)
        return await station_form(request, station_id, answer)

    @router.post("/charge/{station_id}/find", include_in_schema=False, response_model=None)
    async def find_session(
        request: Request, station_id: str, code: Annotated[str, Form()], csrf: Annotated[str, Form()] = ""
    ) -> Response:
        """A session's short code (``DriverLinks.code``) for its link, at most a few wrong ones."""
        same_origin_form(request, csrf)
        address = request.client.host if request.client is not None else ""
        now = settings.now().timestamp()
        wait = wrong_by_address.retry_after_s(address, now) or wrong_by_station.retry_after_s(station_id, now)
        if wait is not None:
            page = await station_form(request, station_id, "wait", wait)
            page.status_code = status.HTTP_429_TOO_MANY_REQUESTS
            page.headers["Retry-After"] = str(wait)
            return page
        # counted wrong before the look-up and taken back if right: many requests at once cannot all
        # pass the budgets while the first wait for the database
        wrong_by_address.failed(address, now)
        wrong_by_station.failed(station_id, now)
        typed = "".join(code.split())  # "1234 5678" as the receipt groups it
        for tx in await repository.list_transactions(station_id, active=True):
            if hmac.compare_digest(settings.links.code(tx.id).encode(), typed.encode()):
                wrong_by_address.refund(address, now)
                wrong_by_station.refund(station_id, now)
                return RedirectResponse(link_to(tx), status.HTTP_303_SEE_OTHER)
        return RedirectResponse(f"/charge/{segment(station_id)}?answer=not-yours", status.HTTP_303_SEE_OTHER)

    @router.get(
        "/charge/{station_id}/session/{session_id}", response_class=HTMLResponse, include_in_schema=False
    )
    async def session_page(
        request: Request, station_id: str, session_id: int, s: str = "", saved: bool = False
    ) -> HTMLResponse:
        tx = await own_session(station_id, session_id, s)
        sv, tariff = await current(tx)
        shown = remembered.get(tx.id_token or "", sv.preferences)
        tz = ZoneInfo(view.site.timezone)
        return pages.TemplateResponse(
            request,
            "driver.html",
            {
                "station_id": station_id,
                "session": sv,
                "secret": s,
                "code": settings.links.code(tx.id),
                "saved": saved,
                "needed_kwh": shown.needed_wh / 1000,
                "wished_kwh": shown.wished_wh / 1000,
                "departure": sv.preferences.departure.astimezone(tz).strftime("%H:%M"),
                "cap_needed": shown.price_cap_needed_per_kwh or "",
                "cap_wished": shown.price_cap_wished_per_kwh or "",
                "prices": tariff_words(tariff),
                "currency": tariff.currency,
                "state": script_json(as_json(sv, tariff.currency)),
            },
        )

    @router.get("/charge/{station_id}/session/{session_id}/events", include_in_schema=False)
    async def session_events(
        request: Request, station_id: str, session_id: int, s: str = ""
    ) -> StreamingResponse:
        await own_session(station_id, session_id, s)

        async def stream() -> AsyncIterator[str]:
            version = -1
            while not await request.is_disconnected():
                version = await view.wait_newer(version, 15.0)
                tx = await repository.get_transaction(session_id)
                if tx is None:
                    break
                yield f"event: state\ndata: {json.dumps(await current_json(tx))}\n\n"
                await asyncio.sleep(settings.push_interval_s)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    @router.post("/charge/{station_id}/session/{session_id}/preferences", include_in_schema=False)
    async def set_from_form(
        station_id: str,
        session_id: int,
        s: Annotated[str, Form()],
        needed_kwh: Annotated[str, Form()],
        departure: Annotated[str, Form()],
        wished_kwh: Annotated[str, Form()] = "",
        target_soc_pct: Annotated[str, Form()] = "",
        battery_kwh: Annotated[str, Form()] = "",
        cap_needed: Annotated[str, Form()] = "",
        cap_wished: Annotated[str, Form()] = "",
    ) -> RedirectResponse:
        # The secret in the form body is what authorises the change: a cross-site form cannot know it.
        tx = await own_session(station_id, session_id, s)
        needed = _kwh_to_wh(needed_kwh, "energy needed")
        if target_soc_pct.strip() and battery_kwh.strip():
            reading = view.reading(tx.station_id, tx.evse_id)
            soc_now = reading.soc_pct if reading is not None and reading.soc_pct is not None else 0.0
            target = float(_kwh_to_wh(target_soc_pct, "target state of charge")) / 1000
            wished = round(max(target - soc_now, 0.0) / 100 * _kwh_to_wh(battery_kwh, "battery size"))
            wished += max(tx.energy_wh or 0, 0)  # ΔE counts from the start of the session
        else:
            wished = _kwh_to_wh(wished_kwh or needed_kwh, "energy wished")
        try:
            body = PreferencesIn(
                needed_wh=needed,
                wished_wh=max(wished, needed),
                departure=departure_at(departure, view.now(), view.site.timezone),
                price_cap_needed_per_kwh=_cap(cap_needed),
                price_cap_wished_per_kwh=_cap(cap_wished),
            )
        except ValidationError as exc:  # a value beyond its bound: the driver's error, not the server's
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.errors()[0]["msg"]) from None
        apply(tx, body.to_preferences(view.now()))
        return RedirectResponse(
            f"/charge/{segment(station_id)}/session/{session_id}?s={s}&saved=1", status.HTTP_303_SEE_OTHER
        )

    def apply(tx: TransactionRecord, prefs: Preferences) -> None:
        view.set_preferences(tx.id, prefs)
        if tx.id_token:
            remembered[tx.id_token] = prefs

    @router.put("/api/sessions/{session_id}/preferences", tags=["sessions"])
    async def put_preferences(
        session_id: int, body: PreferencesIn, authorization: Annotated[str, Header()] = ""
    ) -> dict[str, Any]:
        """Set a session's ChPr: with the admin token, or with the session's own link secret, as Bearer."""
        scheme, _, credential = authorization.partition(" ")
        admin = bool(admin_token) and hmac.compare_digest(credential.encode(), admin_token.encode())
        if scheme.lower() != "bearer" or not (admin or settings.links.allows(session_id, credential)):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a token for this session required",
                {"WWW-Authenticate": "Bearer"},
            )
        tx = await repository.get_transaction(session_id)
        if tx is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no session {session_id}")
        if not tx.active:
            raise HTTPException(status.HTTP_409_CONFLICT, f"session {session_id} has ended")
        apply(tx, body.to_preferences(view.now()))
        return await current_json(tx)

    @router.post("/charge/{station_id}/start", include_in_schema=False)
    async def start(
        request: Request,
        station_id: str,
        id_token: Annotated[str, Form()] = "",
        csrf: Annotated[str, Form()] = "",
    ) -> RedirectResponse:
        """Free charging: ask the station to start; where the site needs authorisation the token decides.
        Only from the station's own page (its CSRF token): another site cannot start with a card's token."""
        same_origin_form(request, csrf)
        token = id_token.strip() or "web-driver"
        running = await repository.list_transactions(station_id, active=True)
        call = operations.remote_start(station_id, token, 1, new_request_id())
        answer = await station_call(station_id, "RemoteStart", call)
        verdict = str(answer.answer.get("status", "?"))
        response = RedirectResponse(
            f"/charge/{segment(station_id)}?answer={quote(verdict)}", status.HTTP_303_SEE_OTHER
        )
        if verdict == "Accepted":  # this browser is led to the session once it begins
            cookie(
                request,
                response,
                START_COOKIE,
                starts.add(station_id, token, running, settings.now().timestamp()),
            )
        return response

    return router
