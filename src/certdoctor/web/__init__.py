"""The web dashboard of ``certdoctor watch serve`` (the ``serve`` extra: Starlette, Jinja2, uvicorn): the fleet at
a glance, a target's chain, findings and client verdicts, the forecast, alerts and the daemon's health; htmx
(vendored in ``static/``) for partial updates, server-side SVG plots, no CDN. The JSON API
(:mod:`certdoctor.watch.httpapi`) is mounted under it. :func:`make_app` is the factory ``watch serve`` hands to
:func:`certdoctor.watch.daemon.serve`."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp

from ..watch.store import Store


def make_app(store: Store, daemon: Any | None = None, **options: Any) -> ASGIApp:
    """The dashboard's ASGI application (see :func:`certdoctor.web.app.make_app`)."""
    from .app import make_app as build

    return build(store, daemon, **options)


__all__ = ["make_app"]
