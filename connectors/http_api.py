"""The partner HTTP API: ``POST /v1/events/<kind>``, answered 202 only once Kafka has the event.

Order of checks, cheapest first: credential (401), kind (403), body size while reading (413),
edge model (422), claimed source (403), the person's data key (503 with Retry-After when the
key store cannot store a new one), Kafka's acknowledgement (503 with Retry-After).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from bus import http_errors
from bus.crypto import Keyring
from bus.http_errors import documented, error_response, header
from bus.keystore import KeyStoreError, keyring_for
from bus.partners import Partner, PartnerRegistry
from bus.topics import ensure_topics
from connectors import openapi
from connectors.ingest import (
    Rejection,
    connector_topics,
    idempotency_key_error,
    kind_not_allowed,
    prepare,
    sealed,
)
from connectors.publisher import KafkaPublisher, PublishError
from connectors.settings import ConnectorSettings
from connectors.tls import CLIENT_CERT_STATE
from connectors.tracing import EventRequestSpans, request_trace
from schemas import PARTNER_KINDS, PARTNER_MODELS

log = logging.getLogger("ungebus.connectors.http")

SUMMARIES = {
    "dropout_notice": "Dropout notice (gymnasium, EUD, FGU)",
    "release_planning_prison": "Release planning from a prison (Kriminalforsorgen)",
    "release_planning_psychiatry": "Discharge planning from a psychiatric ward",
    "handover_uu": "Handover from UU (youth guidance)",
    "handover_municipality": "Handover from another municipality (the young person moved)",
    "school_absence_signal": "School absence signal (10 % / 15 % unlawful absence)",
    "consent_granted": "Consent granted",
    "consent_withdrawn": "Consent withdrawn",
}


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    event_id: str
    event_type: str


class PartnerInfo(BaseModel):
    name: str
    kinds: list[str]
    sources: list[str]


RESPONSES: dict[int | str, dict[str, Any]] = {
    401: documented(
        "No credential, or one the bus does not know",
        WWW_Authenticate=header("`Bearer`: send `Authorization: Bearer <token>`"),
    ),
    403: documented("A kind or a source this partner may not use (`errors` names it)"),
    413: documented("The body is larger than the limit; the connection is closed"),
    422: documented("Invalid body or header: one entry per field and reason"),
    503: documented(
        "Kafka (or its key store) did not acknowledge the event: retry after Retry-After seconds",
        Retry_After=header("seconds to wait before resending the same body", "integer"),
    ),
}

bearer = HTTPBearer(
    auto_error=False, scheme_name=openapi.BEARER_SCHEME, description="the partner's token"
)


def create_app(
    settings: ConnectorSettings,
    partners: PartnerRegistry,
    publisher: KafkaPublisher | None = None,
    keyring: Keyring | None = None,
) -> FastAPI:
    """The ASGI app. Without ``publisher`` it creates the topics and its own producer, and
    opens its keyring on the key store (closed at shutdown)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if publisher is not None:
            app.state.publisher = publisher
            app.state.keyring = keyring
            yield
            return
        specs = connector_topics(settings.topics, settings.replication_factor)
        await asyncio.to_thread(ensure_topics, settings.kafka_config(), specs)
        opened = None if keyring is not None else await asyncio.to_thread(keyring_for, settings)
        own = KafkaPublisher(settings.connector_producer_config())
        own.start()
        app.state.publisher, app.state.keyring = own, keyring or opened
        try:
            yield
        finally:
            left = await asyncio.to_thread(own.close, settings.ack_timeout_s)
            if left:
                log.warning("%d records were not delivered before shutdown", left)
            if opened is not None:
                await asyncio.to_thread(opened.close)

    app = FastAPI(
        title="ungebus partner API",
        version="1",
        description=openapi.DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.partners = partners
    app.state.pseudonym_key = settings.pseudonym_key()
    app.add_middleware(EventRequestSpans)
    http_errors.install(app)
    openapi.install(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/partner", response_model=PartnerInfo, responses={401: RESPONSES[401]})
    async def who_am_i(partner: Annotated[Partner, Depends(authenticate)]) -> PartnerInfo:
        """Check a credential: the partner it belongs to, its kinds and its sources."""
        return PartnerInfo(
            name=partner.name,
            kinds=sorted(partner.kinds),
            sources=sorted(f"{k}:{i}" for k, i in partner.sources),
        )

    for kind in PARTNER_KINDS:
        app.post(
            f"/v1/events/{kind}",
            status_code=202,
            response_model=Accepted,
            responses=RESPONSES,
            summary=SUMMARIES[kind],
            description=PARTNER_MODELS[kind].__doc__ or "",
            openapi_extra={"requestBody": openapi.request_body(kind)},
            operation_id=f"submit_{kind}",
            tags=["events"],
        )(_submit(kind))

    @app.post("/v1/events/{kind}", include_in_schema=False)
    async def unknown_kind(kind: str) -> JSONResponse:
        known = ", ".join(PARTNER_KINDS)
        return error_response(404, f"unknown event kind {kind!r}; known: {known}")

    return app


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Partner:
    """The partner behind the request: its client certificate, else its bearer token."""
    partners: PartnerRegistry = request.app.state.partners
    fingerprint = request.scope.get("state", {}).get(CLIENT_CERT_STATE)
    by_cert = partners.from_certificate(fingerprint) if fingerprint else None
    by_token = partners.from_token(credentials.credentials) if credentials else None
    if by_cert and by_token and by_cert.name != by_token.name:
        raise _unauthorized("the client certificate and the token belong to different partners")
    partner = by_cert or by_token
    if partner is None:
        raise _unauthorized("a bad credential" if credentials else "no credential")
    return partner


def _unauthorized(why: str) -> HTTPException:
    return HTTPException(
        401, f"{why}: send Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"}
    )


def _submit(kind: str) -> Callable[..., Awaitable[JSONResponse]]:
    async def submit(
        request: Request,
        partner: Annotated[Partner, Depends(authenticate)],
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                description="your retry key for a body without event_id; same key, same event",
            ),
        ] = None,
        traceparent: Annotated[
            str | None, Header(description="W3C trace context, continued if valid")
        ] = None,  # read by EventRequestSpans; declared here for the API's documentation
    ) -> JSONResponse:
        settings: ConnectorSettings = request.app.state.settings
        note = request_trace(request)
        note.partner = partner.name
        if not partner.may_send(kind):
            note.errors = [kind_not_allowed(partner, kind)]
            return _forbidden(partner, kind)
        body = await read_body(request, settings.max_body_bytes)
        if idempotency_key is not None and (problem := idempotency_key_error(idempotency_key)):
            note.errors = [problem]
            return error_response(422, "invalid header", [problem])
        result = prepare(
            partner,
            kind,
            body,
            pseudonym_key=request.app.state.pseudonym_key,
            topics=settings.topics,
            idempotency_key=idempotency_key,
        )
        if isinstance(result, Rejection):
            note.errors = list(result.errors)
            return _rejected(result)
        note.event_id, note.source_kind = result.event_id, result.source_kind
        try:
            result = await asyncio.to_thread(sealed, result, request.app.state.keyring)
        except KeyStoreError as exc:
            log.warning("event %s from %s not sealed: %s", result.event_id, partner.name, exc)
            return error_response(
                503,
                "the bus cannot store events right now (its key store did not answer); retry later",
                headers={"Retry-After": str(settings.retry_after_s)},
            )
        try:
            await request.app.state.publisher.publish(result, settings.ack_timeout_s + 1.0)
        except PublishError as exc:
            log.warning("event %s from %s not stored: %s", result.event_id, partner.name, exc)
            return error_response(
                503,
                f"the bus cannot store events right now ({exc}); retry later",
                headers={"Retry-After": str(settings.retry_after_s)},
            )
        log.info("accepted event %s (%s) from %s", result.event_id, kind, partner.name)
        accepted = Accepted(event_id=result.event_id, event_type=result.event_type)
        return JSONResponse(accepted.model_dump(), 202)

    submit.__name__ = f"submit_{kind}"
    return submit


def _rejected(rejection: Rejection) -> JSONResponse:
    if rejection.status == "invalid":
        return error_response(422, "the body is invalid", rejection.errors)
    return error_response(403, "this partner may not send that", rejection.errors)


def _forbidden(partner: Partner, kind: str) -> JSONResponse:
    error = kind_not_allowed(partner, kind)
    return error_response(403, "this partner may not send that", [error])


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is larger than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


def _too_large(limit: int) -> HTTPException:
    # Close the connection: the rest of the body is never read, so the client must stop.
    return HTTPException(413, f"the body is larger than {limit} bytes", {"Connection": "close"})
