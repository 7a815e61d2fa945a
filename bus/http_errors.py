"""One error body for both HTTP APIs: ``{"detail": ..., "errors": [{field, reason, code}]}``.

Every refusal of the partner API and the inbox API has this shape, so a generated client has
one error type. FastAPI's own answers (a 405, a request it cannot validate) are rendered the
same way; its 422 would quote the input back, and the input may be a CPR number or a note
about a young person, so here a field error names the field and the reason, never the value.
"""

from __future__ import annotations

import http
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

# Where FastAPI says a parameter came from: the first element of an error's ``loc``.
_LOCATIONS = frozenset({"body", "header", "query", "path", "cookie"})


class FieldError(BaseModel):
    field: str = Field(description="the field (dotted path) or header at fault")
    reason: str = Field(description="why, in words; never the value that was sent")
    code: str = Field(description="a stable code for the reason")


class ErrorBody(BaseModel):
    """Why a request was refused."""

    detail: str = Field(description="what went wrong, in a sentence")
    errors: list[FieldError] = Field(
        description="one entry per field and reason; empty when no field is at fault"
    )


def error_response(
    status: int,
    detail: str,
    errors: Iterable[Mapping[str, str]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"detail": detail, "errors": [dict(e) for e in errors]}
    return JSONResponse(body, status, headers=dict(headers) if headers else None)


def documented(description: str, **headers: dict[str, Any]) -> dict[str, Any]:
    """An error answer for a route's ``responses``: the one body, and the headers it carries
    (``Retry_After=header(...)`` documents ``Retry-After``)."""
    answer: dict[str, Any] = {"model": ErrorBody, "description": description}
    if headers:
        answer["headers"] = {name.replace("_", "-"): spec for name, spec in headers.items()}
    return answer


def header(description: str, schema_type: str = "string") -> dict[str, Any]:
    """A response header that the answer always carries."""
    return {"description": description, "required": True, "schema": {"type": schema_type}}


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """FastAPI's validation errors as field errors, without their ``input``."""
    found = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        place = loc[0] if loc and loc[0] in _LOCATIONS else ""
        path = loc[1:] if place else loc
        if error.get("type") == "json_invalid":
            path = []  # its loc ends in a character position, not a field
        found.append(
            {
                "field": ".".join(path) or f"({place or 'request'})",
                "reason": str(error.get("msg", "invalid")),
                "code": str(error.get("type", "invalid")),
            }
        )
    return found


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = getattr(exc, "headers", None)
    if exc.status_code < 200 or exc.status_code in (204, 205, 304):
        return Response(status_code=exc.status_code, headers=headers)
    detail = exc.detail if isinstance(exc.detail, str) else http.HTTPStatus(exc.status_code).phrase
    return error_response(exc.status_code, detail, headers=headers)


async def _invalid_request(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "the request is invalid", validation_errors(exc))


def install(app: FastAPI) -> None:
    """Render FastAPI's own refusals (HTTPException, validation) as ``ErrorBody``."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
