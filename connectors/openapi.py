"""The OpenAPI description partners' developers read: one typed request body per event kind.

The endpoints read their bodies themselves (to cap the size while reading), so FastAPI does
not see the edge models; they are added here as components, with a synthetic example each.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from connectors.ingest import IDEMPOTENCY_KEY_SCHEMA
from schemas import PARTNER_MODELS
from schemas.synthetic import valid_payload

REF = "#/components/schemas/{model}"
BEARER_SCHEME = "partnerToken"
CERTIFICATE_SCHEME = "clientCertificate"
# Either credential identifies the partner (both at once must name the same partner).
SECURITY: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}, {CERTIFICATE_SCHEME: []}]
CERTIFICATE = {
    "type": "mutualTLS",
    "description": "a client certificate registered for the partner (when the bus serves "
    "HTTPS with UNGEBUS_TLS_CLIENT_CA)",
}
HEADER_SCHEMAS = {"idempotency-key": IDEMPOTENCY_KEY_SCHEMA}

DESCRIPTION = """\
Partner institutions (schools, prisons, psychiatric wards, UU, municipalities) submit events
about young people aged 15-29 here. Each event kind has its own path and JSON body.

**Credentials.** Send `Authorization: Bearer <token>` (or connect with the client
certificate registered for you). Your credential is bound to the event kinds you may send and
to your own source identity (institution number, prison, ward, UU centre or kommunekode).

**Answers.** `202` with the `event_id` once the event is stored in Kafka. `401` no or a bad
credential; `403` a kind or a source you may not use; `413` body too large; `422` the body
or the `Idempotency-Key` header is invalid; `503` the bus cannot store events right now: retry
after `Retry-After` seconds. Every error has one body, `ErrorBody`: a `detail` sentence and
`errors` naming each field and the reason (your input is never echoed).

**Retries are safe.** Resend the same body: the event id stays the same (it is your
`event_id`, else derived from your `Idempotency-Key` header, else from the body's content),
and the bus drops the duplicate.
"""


def request_body(kind: str) -> dict[str, Any]:
    model = PARTNER_MODELS[kind]
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": REF.format(model=model.__name__)},
                "example": example_payload(kind),
            }
        },
    }


def example_payload(kind: str) -> dict[str, Any]:
    """A synthetic payload dated recently, so 'Try it out' in /docs is accepted as is."""
    today = dt.datetime.now(dt.UTC).date()
    return valid_payload(random.Random(f"example-{kind}"), kind, today)


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` include every edge model as a component schema."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            components = document.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            for model in PARTNER_MODELS.values():
                schema = model.model_json_schema(ref_template=REF)
                schemas.update(schema.pop("$defs", {}))
                schemas[model.__name__] = schema
            components.setdefault("securitySchemes", {})[CERTIFICATE_SCHEME] = CERTIFICATE
            for operation in _operations(document):
                _declare_headers(operation)
                if operation.get("security"):
                    operation["security"] = SECURITY
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for path in document.get("paths", {}).values() for op in path.values()]


def _declare_headers(operation: dict[str, Any]) -> None:
    """Header parameters as the server reads them: a string (FastAPI says "string or null",
    which a header cannot be), with the rules the handler applies."""
    for parameter in operation.get("parameters", []):
        if parameter.get("in") != "header":
            continue
        schema = parameter["schema"]
        not_null = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
        if len(not_null) == 1:
            schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **not_null[0]}
        parameter["schema"] = {**schema, **HEADER_SCHEMAS.get(parameter["name"].lower(), {})}
