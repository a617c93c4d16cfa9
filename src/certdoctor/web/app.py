"""The dashboard's routes (Starlette): pages rendered by Jinja2 with autoescaping, htmx partials, the CSV export,
the writes, and the JSON API of :mod:`certdoctor.watch.httpapi` mounted under them (``/api/*``, ``/healthz``,
``/metrics`` as before). Sync endpoints run in Starlette's thread pool, so database reads never block the
daemon's event loop; the diagnosis fragment is async (it may await a check made by the daemon)."""

from __future__ import annotations

import asyncio
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from ..errors import InputError
from ..watch import alerts as watch_alerts
from ..watch import fleet, httpapi
from ..watch.clock import now
from ..watch.durations import parse_duration
from ..watch.store import DEFAULT_EVERY, Store, parse_labels
from . import auth, plots, views

HERE = Path(__file__).resolve().parent
MAX_FORM = 64 * 1024  # bytes of a form body
LOGIN_FAILURE_DELAY = 0.5  # seconds before a wrong token is answered
CSV_BATCH = 1000  # CSV records per chunk of the export
DEFAULT_FORECAST_DAYS = 90.0
MAX_FORECAST_DAYS = 3650.0
FORECAST_SHOWN = 1000  # calendar entries listed (the chart counts them all)
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
DAY_BINS_CLASSES = ("bin-expired", "bin-7", "bin-30", "bin-90", "bin-ok", "bin-unknown")


def _visible(value: Any) -> Any:
    """Jinja's ``finalize``: control, bidirectional and zero-width characters of a printed string become visible
    ``\\xNN``/``\\uNNNN`` escapes (newlines kept: PEM), as :func:`certdoctor.render.escape.clean` does for a
    terminal; autoescaping then handles HTML. None prints as nothing."""
    if value is None:
        return ""
    if isinstance(value, str) and _UNSAFE.search(value):
        return _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", value)
    return value


def _when(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(fmt)


def _days(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f}"


def days_class(value: float | None) -> str:
    """The CSS class of a days-left value (colour thresholds: expired, within 7, within 30, later; the number is
    always printed next to it)."""
    if value is None:
        return "days-unknown"
    if value < 0:
        return "days-expired"
    if value <= 7:
        return "days-7"
    if value <= 30:
        return "days-30"
    return "days-ok"


def _common_name(dn: str | None) -> str:
    """The CN of an RFC 4514 name when it comes first (``CN=certdoctor Lab RSA CA,O=…`` → ``certdoctor Lab RSA
    CA``; escaped commas kept), else the whole name: the fleet table shows it, the full name in a tooltip."""
    if not dn:
        return ""
    match = _FIRST_CN.match(dn)
    return match.group(1) if match else dn


_FIRST_CN = re.compile(r"CN=((?:[^,\\]|\\.)+)")


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        finalize=_visible,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["days"] = _days
    env.filters["days_class"] = days_class
    env.filters["common_name"] = _common_name
    env.globals["STATUS_TEXT"] = fleet.STATUS_TEXT
    env.globals["urlencode"] = urlencode
    return env


def _params(request: Request) -> dict[str, list[str]]:
    """The query string as FleetQuery.from_params takes it (every name with all its values; empty values, as an
    HTML form sends its blank fields, left out)."""
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if value.strip():
            out.setdefault(key, []).append(value)
    return out


async def _form(request: Request) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body (HTML forms' default; WHATWG URL §5), at most
    :data:`MAX_FORM` bytes. Raises InputError for a larger body."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise InputError("the form is too large")
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def make_app(store: Store, daemon: Any | None = None, *, token: str | None = ...) -> ASGIApp:  # type: ignore[assignment]
    """The dashboard over ``store`` (``daemon``: the running :class:`certdoctor.watch.daemon.Daemon`, for health,
    the latest diagnoses and checks made now; None in tests of the pages alone). ``token``: the access token
    (default: the daemon's ``config.token``; None: read-only)."""
    if token is ...:
        token = getattr(getattr(daemon, "config", None), "token", None)
    sessions = auth.Sessions(token or None)
    env = environment()
    index = fleet.FleetIndex(store)
    if daemon is not None:  # build the index while the daemon starts, not at the first page view
        threading.Thread(target=_warm, args=(index,), name="fleet-index", daemon=True).start()

    def page(request: Request, name: str, context: Mapping[str, Any], status: int = 200) -> HTMLResponse:
        sid = request.scope.get("state", {}).get("sid")
        body = env.get_template(name).render(
            {
                "request": request,
                "path": request.url.path,
                "writable": sessions.writable,
                "logged_in": sid is not None,
                "csrf": sessions.csrf(sid),
                **context,
            }
        )
        return HTMLResponse(body, status)

    def problem(request: Request, status: int, message: str) -> HTMLResponse:
        return page(request, "problem.html", {"status": status, "message": message, "title": "Error"}, status)

    # --- fleet ---------------------------------------------------------------------------------------------

    def _fleet_context(request: Request) -> dict[str, Any]:
        q = fleet.FleetQuery.from_params(_params(request))
        result = index.query(q)
        return {"q": q, "result": result, "sort_keys": fleet.SORT_KEYS, "query": urlencode(q.to_params())}

    def fleet_page(request: Request) -> Response:
        try:
            context = _fleet_context(request)
        except InputError as exc:
            return problem(request, 400, str(exc))
        histogram = index.days_left_histogram()
        weeks = index.expiries_per_week()
        context["days_chart"] = plots.bar_chart(
            "days-left-chart",
            "Targets by days left",
            histogram,
            classes=DAY_BINS_CLASSES[: len(histogram)],
        )
        context["weeks_chart"] = plots.bar_chart(
            "expiries-chart",
            "Expiries per week (next 13 weeks)",
            [(w.strftime("%m-%d"), n) for w, n in weeks],
        )
        return page(request, "fleet.html", {**context, "title": "Fleet"})

    def fleet_rows(request: Request) -> Response:
        try:
            context = _fleet_context(request)
        except InputError as exc:  # shown in place of the rows (htmx-config: a 400 is swapped in)
            response = page(request, "fleet_error.html", {"message": str(exc)}, 400)
            response.headers["HX-Push-Url"] = "false"  # the address bar keeps the last valid filter
            return response
        response = page(request, "fleet_rows.html", {**context, "partial": True})
        # the address bar shows the page's URL with this filter, not the partial's (htmx: HX-Push-Url)
        response.headers["HX-Push-Url"] = "/" + (f"?{context['query']}" if context["query"] else "")
        return response

    def fleet_csv(request: Request) -> Response:
        try:
            q = fleet.FleetQuery.from_params(_params(request))
        except InputError as exc:
            return problem(request, 400, str(exc))
        rows = index.rows(q)
        stamp = now().strftime("%Y%m%dT%H%M%SZ")
        return StreamingResponse(
            _batched(fleet.csv_lines(rows)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="certdoctor-fleet-{stamp}.csv"'},
        )

    # --- a target ------------------------------------------------------------------------------------------

    def target_page(request: Request) -> Response:
        ident = int(request.path_params["id"])
        data = views.target_page(store, ident)
        if data is None:
            return problem(request, 404, f"no such target: {ident}")
        return page(request, "target.html", {**data, "title": data["target"].spec, "row": index.row(ident)})

    async def diagnosis(request: Request) -> Response:
        ident = int(request.path_params["id"])
        doc = None if daemon is None else daemon.latest_diagnosis(ident)
        fresh = False
        message = None
        if doc is None and daemon is not None:
            try:
                doc = await daemon.check_now(ident)
                fresh = True
            except RuntimeError as exc:
                message = str(exc)
        if doc is None and message is None:
            if daemon is None:
                message = "no daemon: only the stored facts are shown"
            elif store.target(ident) is None:
                return problem(request, 404, f"no such target: {ident}")
            else:
                message = "the check could not be stored (see the daemon's log)"
        names = views.titles()
        return page(
            request,
            "diagnosis.html",
            {"doc": doc, "fresh": fresh, "message": message, "titles": names, "target_id": ident},
        )

    # --- forecast, alerts, health ----------------------------------------------------------------------------

    def forecast_page(request: Request) -> Response:
        try:
            days = float(request.query_params.get("days") or DEFAULT_FORECAST_DAYS)
            if not 0 < days <= MAX_FORECAST_DAYS:
                raise InputError(f"days: out of range (0..{MAX_FORECAST_DAYS:g}): {days:g}")
            labels = parse_labels(v for v in request.query_params.getlist("label") if v.strip())
        except ValueError:
            return problem(request, 400, "days: not a number")
        except InputError as exc:
            return problem(request, 400, str(exc))
        group = request.query_params.get("by") or None
        entries = fleet.calendar(store, index, days=days, labels=labels or None)
        chart_weeks = views.by_week(entries)
        weeks = views.by_week(entries[:FORECAST_SHOWN], group)
        chart = plots.bar_chart(
            "forecast-chart",
            f"Expiries and breaks per week (next {days:g} days)",
            views.week_counts(chart_weeks, now(), days),
        )
        label_keys = sorted({k for e in entries for k in (e.get("labels") or {})})
        return page(
            request,
            "forecast.html",
            {
                "title": "Forecast",
                "days": days,
                "labels": labels,
                "label_text": " ".join(f"{k}={v}" for k, v in labels.items()),
                "group": group,
                "label_keys": label_keys,
                "weeks": weeks,
                "total": len(entries),
                "shown": min(len(entries), FORECAST_SHOWN),
                "chart": chart,
            },
        )

    def alerts_page(request: Request) -> Response:
        return page(request, "alerts.html", {"title": "Alerts", **views.alerts_page(store)})

    def health_page(request: Request) -> Response:
        if daemon is not None:
            health = daemon.health()
        else:
            health = {"status": "ok", "database": "ok", "targets": views.target_count(store)}
        try:
            due = views.due_now(store)
        except Exception as exc:  # the database failing: health says so already
            due = f"{type(exc).__name__}"
        url = store.url
        try:
            import sqlalchemy as sa

            url = sa.engine.make_url(store.url).render_as_string(hide_password=True)
        except Exception:
            pass
        since = None
        if health.get("last_check"):
            since = round((now() - datetime.fromisoformat(health["last_check"])).total_seconds())
        return page(
            request,
            "health.html",
            {"title": "Health", "health": health, "due": due, "database_url": url, "since_last_check": since},
        )

    # --- login --------------------------------------------------------------------------------------------

    def login_form(request: Request) -> Response:
        return page(
            request,
            "login.html",
            {"title": "Log in", "next": auth.safe_next(request.query_params.get("next")), "failed": False},
        )

    async def login(request: Request) -> Response:
        secure = request.url.scheme == "https"
        if not auth.same_origin(request.scope, request.headers):
            return problem(request, 403, "refused: the request comes from another site")
        try:
            form = await _form(request)
        except InputError as exc:
            return problem(request, 400, str(exc))
        target = auth.safe_next(auth.first(form.get("next", ())))
        if not sessions.writable:
            return problem(request, 403, "read-only: watch serve runs without a token, nobody can log in")
        if not sessions.check_token(auth.first(form.get("token", ()))):
            await asyncio.sleep(LOGIN_FAILURE_DELAY)  # guessing the token online is slow
            return page(request, "login.html", {"title": "Log in", "next": target, "failed": True}, 401)
        response = RedirectResponse(target, 303)
        auth.set_cookie(response, sessions.new_cookie(), secure)
        return response

    async def logout(request: Request) -> Response:
        refused = await _write_refused(request)
        if refused is not None:
            return refused
        sid = request.scope["state"]["sid"]
        sessions.logout(sid)
        response = RedirectResponse("/login", 303)
        auth.clear_cookie(response, request.url.scheme == "https")
        return response

    # --- writes -------------------------------------------------------------------------------------------

    async def _write_refused(request: Request) -> Response | None:
        """403 unless the dashboard is writable, the request has the login cookie, comes from this site and its
        form's ``csrf`` field is the session's token; the form is then in ``request.state.form``."""
        if not sessions.writable:
            return problem(request, 403, "read-only: watch serve runs without a token (--token)")
        sid = request.scope["state"].get("sid")
        if sid is None:
            return problem(request, 403, "log in first: writes need the login cookie")
        if not auth.same_origin(request.scope, request.headers):
            return problem(request, 403, "refused: the request comes from another site")
        try:
            form = await _form(request)
        except InputError as exc:
            return problem(request, 400, str(exc))
        if not sessions.csrf_ok(sid, auth.first(form.get("csrf", ()))):
            return problem(request, 403, "refused: the form's CSRF token is missing or wrong (reload the page)")
        request.state.form = form
        return None

    def _back(request: Request, default: str) -> Response:
        """303 to the form's ``next`` (a local path), else ``default``."""
        wanted = auth.first(request.state.form.get("next", ()))
        return RedirectResponse(auth.safe_next(wanted) if wanted else default, 303)

    async def ack(request: Request) -> Response:
        refused = await _write_refused(request)
        if refused is not None:
            return refused
        ident = int(request.path_params["id"])
        done = await _run(watch_alerts.ack_alert, store, ident)
        if not done:
            return problem(request, 409, f"alert {ident} is not open (already acknowledged, resolved, or unknown)")
        return _back(request, "/alerts")

    async def snooze(request: Request) -> Response:
        refused = await _write_refused(request)
        if refused is not None:
            return refused
        ident = int(request.path_params["id"])
        try:
            seconds = parse_duration(auth.first(request.state.form.get("for", ())) or "1d")
            await _run(watch_alerts.snooze, store, str(ident), seconds)
        except InputError as exc:
            return problem(request, 400, str(exc))
        return _back(request, f"/targets/{ident}")

    async def add_target(request: Request) -> Response:
        refused = await _write_refused(request)
        if refused is not None:
            return refused
        form = request.state.form
        try:
            spec = auth.first(form.get("target", ())).strip()
            if not spec:
                raise InputError("target: empty")
            labels = parse_labels(auth.first(form.get("labels", ())).replace(",", " ").split())
            every_text = auth.first(form.get("every", ())).strip()
            every = parse_duration(every_text) if every_text else DEFAULT_EVERY
            [(added, _new)] = await _run(store.add, [spec], labels, every)
        except InputError as exc:
            return problem(request, 400, str(exc))
        return RedirectResponse(f"/targets/{added.id}", 303)

    async def delete_target(request: Request) -> Response:
        refused = await _write_refused(request)
        if refused is not None:
            return refused
        ident = int(request.path_params["id"])
        removed, _unknown = await _run(store.remove, [ident])
        if not removed:
            return problem(request, 404, f"no such target: {ident}")
        return RedirectResponse("/", 303)

    api = httpapi.make_app(store, daemon, token=None, fleet_index=index)  # one index per process
    routes = [
        Route("/", fleet_page),
        Route("/fleet/rows", fleet_rows),
        Route("/fleet.csv", fleet_csv),
        Route("/targets", add_target, methods=["POST"]),
        Route("/targets/{id:int}", target_page),
        Route("/targets/{id:int}/diagnosis", diagnosis),
        Route("/targets/{id:int}/snooze", snooze, methods=["POST"]),
        Route("/targets/{id:int}/delete", delete_target, methods=["POST"]),
        Route("/forecast", forecast_page),
        Route("/alerts", alerts_page),
        Route("/alerts/{id:int}/ack", ack, methods=["POST"]),
        Route("/health", health_page),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
        Mount("", app=api),
    ]
    app = Starlette(routes=routes)
    return auth.Guard(app, sessions)


def _batched(lines: Iterator[str], size: int = CSV_BATCH) -> Iterator[str]:
    """``size`` CSV records per chunk: Starlette moves each item of a sync iterator through its thread pool, so
    one record per chunk made a 10,000-row export take seconds."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


def _warm(index: fleet.FleetIndex) -> None:
    """The fleet index's first build (a second or so at 10,000 targets), in a thread of its own."""
    try:
        index.refresh()
    except Exception as exc:  # the database failing: the first page view tries again and says why
        print(f"certdoctor watch serve: dashboard: {type(exc).__name__}: {exc}", file=sys.stderr)


async def _run(func: Any, *args: Any) -> Any:
    """``func(*args)`` in Starlette's thread pool (database writes off the event loop)."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(func, *args)
