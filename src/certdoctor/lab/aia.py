"""The AIA HTTP server: the CA certificates (``/<slug>.cer``) and the revocation routes (OCSP responders,
CRLs and misbehaving responders), one request per connection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from . import pki, revocation
from .httpd import (
    HOLD,
    REQUEST_TIMEOUT,
    BadRequest,
    HttpRequest,
    HttpResponse,
    RouteHandler,
    Router,
    close_writer,
    read_request,
    write_response,
)

log = logging.getLogger("certdoctor.lab")

PkiGetter = Callable[[], pki.LabPKI]  # the started lab's PKI (RuntimeError before start)


def add_ca_files(router: Router, lab_pki: pki.LabPKI) -> None:
    """Serve every CA certificate the lab knows at ``/<slug>.cer`` (DER)."""
    for path, der in lab_pki.ca_files().items():
        router.add_static(path, der, "application/pkix-cert")


def add_revocation_routes(router: Router, get_pki: PkiGetter) -> None:
    """Add the revocation routes to ``router``.

    - ``POST /ocsp/<slug>`` (body: a DER OCSPRequest) and ``GET /ocsp/<slug>/<url-encoded base64 of the
      request>`` (RFC 6960 A.1): the DER OCSPResponse of CA ``<slug>``'s responder, see
      :meth:`pki.LabPKI.answer_ocsp`. HTTP 404 for a CA without a responder.
    - ``/ocsp-get-only/<slug>...``: the same responder, but POST gets HTTP 405.
    - ``/ocsp-slow/...`` (any method): never answers; the connection is held until the client leaves or
      the lab stops.
    - ``/ocsp-garbage`` and anything below it (any method): 2 KiB of random bytes, as
      application/ocsp-response.
    - ``GET /crl/<slug>.crl`` (DER) and ``/crl/<slug>.pem`` (PEM): CA ``<slug>``'s CRL, signed anew for
      each request (:meth:`pki.LabPKI.crl`).
    """
    router.add_prefix("/ocsp/", _ocsp_route(get_pki, "/ocsp/", get_only=False))
    router.add_prefix("/ocsp-get-only/", _ocsp_route(get_pki, "/ocsp-get-only/", get_only=True))
    for path, handler in (("/ocsp-slow", _hold), ("/ocsp-garbage", _garbage_ocsp)):
        router.add(path, handler, methods=None)
        router.add_prefix(path + "/", handler, methods=None)
    for slug in pki.REVOCATION_SLUGS:
        router.add(f"/crl/{slug}.crl", _crl_route(get_pki, slug, pem=False))
        router.add(f"/crl/{slug}.pem", _crl_route(get_pki, slug, pem=True))


def _ocsp_route(get_pki: PkiGetter, prefix: str, *, get_only: bool) -> RouteHandler:
    def handle(request: HttpRequest) -> HttpResponse:
        lab_pki = get_pki()
        slug, _, encoded = request.path[len(prefix) :].partition("/")
        if slug not in lab_pki.responders:
            return HttpResponse(404, b"no OCSP responder here\n")
        if request.method == "POST":
            if get_only:
                return HttpResponse(405, b"this responder only answers GET\n", headers=(("Allow", "GET"),))
            der = request.body
        else:
            der = revocation.decode_get(encoded)
        try:
            answer = lab_pki.answer_ocsp(slug, der)
        except Exception:  # a request the lab did not foresee; still answer in OCSP
            log.debug("lab: OCSP responder %s failed", slug, exc_info=True)
            answer = revocation.unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR)
        return HttpResponse(200, answer, "application/ocsp-response")

    return handle


def _crl_route(get_pki: PkiGetter, slug: str, *, pem: bool) -> RouteHandler:
    def handle(request: HttpRequest) -> HttpResponse:
        crl = get_pki().crl(slug)
        if pem:
            return HttpResponse(200, crl.public_bytes(serialization.Encoding.PEM), "application/x-pem-file")
        return HttpResponse(200, crl.public_bytes(serialization.Encoding.DER), "application/pkix-crl")

    return handle


def _hold(request: HttpRequest) -> HttpResponse:
    return HOLD


def _garbage_ocsp(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, revocation.garbage(), "application/ocsp-response")


async def serve_connection(router: Router, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer one request (read within REQUEST_TIMEOUT) with ``router``; a HOLD answer says nothing at all."""
    try:
        request = await asyncio.wait_for(read_request(reader), REQUEST_TIMEOUT)
    except BadRequest as exc:
        await write_response(writer, HttpResponse(400, f"{exc}\n".encode()))
    else:
        response = await router.dispatch(request)
        if response.hold:
            # Say nothing; read (and drop) until the client leaves. Stopping the lab cancels this task.
            while await reader.read(4096):
                pass
            writer.transport.abort()
            return
        await write_response(writer, response, head_only=request.method == "HEAD")
    await close_writer(writer)
