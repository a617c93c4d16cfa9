"""The HTTP API of ``certdoctor watch serve`` (Starlette; the ``serve`` extra). Every answer is a versioned JSON
document (``{"certdoctor": 1, "kind": …}``, schemas in ``schemas/``), except ``/metrics`` (Prometheus text):

- ``GET /healthz`` → ``watch-health`` (503 when the database does not answer);
- ``GET /api/targets[?label=K=V…]`` → ``watch-status`` (every target with its latest observation, most urgent
  first);
- ``GET /api/targets/{id}[?limit=N]`` → ``watch-history`` (the target, its latest N observations with their
  endpoints, its events);
- ``GET /api/events[?since=7d|ISO-8601][&after=ID]`` → ``watch-events`` (oldest first; ``after``: only events
  with a larger id, for a reader that polls);
- ``GET /api/fleet[?status=…&label=K=V&issuer=…&key_type=…&client=…&days_min=…&days_max=…&q=…&sort=…&order=…
  &page=N&per_page=N]`` → ``watch-fleet`` (one page of the fleet as the dashboard shows it, with the whole
  fleet's summary and facets: :mod:`certdoctor.watch.fleet`, the parameters of
  :meth:`~certdoctor.watch.fleet.FleetQuery.from_params`);
- ``GET /metrics`` → :func:`certdoctor.watch.metrics.render_metrics`, when that module is installed.

Errors are ``watch-api-error`` documents (400, 401, 404). With a token, every request must carry
``Authorization: Bearer TOKEN`` (RFC 6750 §2.1), compared in constant time; without it the answer is 401 with
``WWW-Authenticate: Bearer`` (RFC 6750 §3).
"""

from __future__ import annotations

import hmac
import importlib.util
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import InputError
from .durations import parse_duration
from .fleet import FleetIndex, FleetQuery
from .store import Store, now, parse_labels

JSON_VERSION = 1
METRICS_MODULE = "certdoctor.watch.metrics"
MAX_LIMIT = 1000


def document(kind: str, body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"certdoctor": JSON_VERSION, "kind": kind, **body}, status_code=status, headers=headers)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return document("watch-api-error", {"status": status, "error": message}, status, headers)


class BearerToken:
    """ASGI middleware: every HTTP request needs ``Authorization: Bearer <token>`` (compared with
    :func:`hmac.compare_digest`, so the time taken does not tell how much of a guess was right)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = b"Bearer " + token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = b""
            for name, value in scope.get("headers") or ():
                if name == b"authorization":
                    given = value
                    break
            if not hmac.compare_digest(given, self.expected):
                response = error(401, "a Bearer token is required", {"WWW-Authenticate": 'Bearer realm="certdoctor"'})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _since(text: str | None) -> datetime:
    """``since``: a duration back from now (7d, 90m) or an ISO 8601 moment (UTC unless it has an offset)."""
    if not text:
        return now() - timedelta(days=7)
    try:
        return now() - timedelta(seconds=parse_duration(text))
    except InputError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise InputError(f"since: not a duration (7d, 12h) nor an ISO 8601 date-time: {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _int(request: Request, name: str, default: int | None, low: int = 0, high: int | None = None) -> int | None:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not text.isdigit():
        raise InputError(f"{name}: not a non-negative integer: {text!r}")
    value = int(text)
    if value < low or (high is not None and value > high):
        raise InputError(f"{name}: out of range ({low}..{high if high is not None else ''}): {value}")
    return value


def _query_body(query: FleetQuery) -> dict[str, Any]:
    """The query as the ``watch-fleet`` document echoes it (every field, defaults included)."""
    return {
        "status": sorted(query.status),
        "labels": dict(query.labels),
        "issuer": query.issuer,
        "key_type": query.key_type,
        "client": query.client,
        "days_min": query.days_min,
        "days_max": query.days_max,
        "q": query.text,
        "sort": query.sort,
        "order": "desc" if query.descending else "asc",
        "page": query.page,
        "per_page": query.per_page,
    }


def make_app(
    store: Store, daemon: Any | None = None, *, token: str | None = None, fleet_index: FleetIndex | None = None
) -> ASGIApp:
    """The ASGI application over ``store`` (``daemon`` feeds /healthz). The endpoints are plain functions:
    Starlette runs them in its thread pool, so database reads never block the scheduler's event loop.
    ``fleet_index``: the process's :class:`~certdoctor.watch.fleet.FleetIndex` behind /api/fleet (one is made
    at the first request when none is given)."""
    indexes: list[FleetIndex] = [fleet_index] if fleet_index is not None else []
    making = threading.Lock()

    def healthz(_request: Request) -> Response:
        if daemon is not None:
            body = daemon.health()
        else:
            body = {"status": "ok", "database": "ok", "targets": len(store.targets())}
        return document("watch-health", body, 200 if body["database"] == "ok" else 503)

    def targets(request: Request) -> Response:
        labels = parse_labels(request.query_params.getlist("label"))
        return document("watch-status", {"targets": store.status(labels=labels)})

    def target(request: Request) -> Response:
        ident = int(request.path_params["id"])
        limit = _int(request, "limit", 20, 1, MAX_LIMIT)
        if store.target(ident) is None:
            return error(404, f"no such target: {ident}")
        found, observations, events = store.history(ident, limit=limit or 20)
        return document("watch-history", {"target": found.to_dict(), "observations": observations, "events": events})

    def events(request: Request) -> Response:
        since = _since(request.query_params.get("since"))
        after = _int(request, "after", None)
        return document("watch-events", {"since": since.isoformat(), "events": store.events(since, after_id=after)})

    def fleet(request: Request) -> Response:
        query = FleetQuery.from_params(request.query_params)
        with making:
            if not indexes:
                indexes.append(FleetIndex(store))
        moment = now()
        page = indexes[0].query(query, moment)
        return document("watch-fleet", {"at": moment.isoformat(), "query": dict(_query_body(query)), **page.to_dict()})

    routes = [
        Route("/healthz", healthz),
        Route("/api/fleet", fleet),
        Route("/api/targets", targets),
        Route("/api/targets/{id:int}", target),
        Route("/api/events", events),
    ]
    if importlib.util.find_spec(METRICS_MODULE) is not None:

        def metrics(_request: Request) -> Response:
            module = importlib.import_module(METRICS_MODULE)
            return Response(module.render_metrics(store), media_type=module.CONTENT_TYPE)

        routes.append(Route("/metrics", metrics))

    async def input_error(_request: Request, exc: Exception) -> Response:
        return error(400, str(exc))

    async def not_found(_request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return error(status, "not found" if status == 404 else str(getattr(exc, "detail", "")))

    app: ASGIApp = Starlette(
        routes=routes, exception_handlers={InputError: input_error, 404: not_found, 405: not_found}
    )
    if token:
        app = BearerToken(app, token)
    return app
