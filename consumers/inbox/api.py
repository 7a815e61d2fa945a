"""The JSON API, mirroring the page, for case-management systems that pull tasks.

Its OpenAPI document (``/api/openapi.json``) says how to authenticate (a bearer token, or the
signed-in session whose unsafe requests carry the CSRF header) and every answer a route can
give, each error with the one ``ErrorBody``: clients are generated from it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from bus.http_errors import documented, header
from consumers.inbox.caseworkers import Caseworker
from consumers.inbox.take_over import TakeOverRefused, find_task
from consumers.inbox.tasks import inbox_order
from consumers.inbox.tracing import request_span
from consumers.inbox.views import (
    EscalationList,
    TakeOverIn,
    TaskList,
    TaskOut,
    escalation_out,
    task_out,
)
from consumers.inbox.web import CSRF_HEADER, SESSION_COOKIE, api_caseworker, services

BEARER_SCHEME, SESSION_SCHEME, CSRF_SCHEME = "bearerToken", "session", "csrfToken"
SECURITY_SCHEMES = {
    BEARER_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "description": "a caseworker's API token (`ungebus inbox add-caseworker --api-token`)",
    },
    SESSION_SCHEME: {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "the session cookie a caseworker gets by signing in at /login",
    },
    CSRF_SCHEME: {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-Token",
        "description": "with a session, unsafe methods also send the session's CSRF token "
        "(the `csrf_token` of the inbox's pages)",
    },
}
assert SECURITY_SCHEMES[CSRF_SCHEME]["name"].lower() == CSRF_HEADER
# Alternatives: a bearer token, or a session (whose POST also needs the CSRF header).
READING: dict[str, Any] = {"security": [{BEARER_SCHEME: []}, {SESSION_SCHEME: []}]}
WRITING: dict[str, Any] = {"security": [{BEARER_SCHEME: []}, {SESSION_SCHEME: [], CSRF_SCHEME: []}]}

_ANSWERS: dict[int | str, dict[str, Any]] = {
    401: documented(
        "No valid bearer token and no signed-in session",
        WWW_Authenticate=header("`Bearer`: send a bearer token or sign in"),
    ),
    403: documented("A session's request without its CSRF token (X-CSRF-Token)"),
    404: documented("No such task in the caller's unit (unknown or another unit's)"),
    409: documented("Already taken over by someone else"),
    422: documented("The body is invalid (not UTF-8 JSON, or a note that is too long)"),
    503: documented("Kafka did not acknowledge; nothing was recorded: try again"),
}


def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: _ANSWERS[status] for status in statuses}


class Utf8JsonRequest(Request):
    """JSON is UTF-8 (RFC 8259): other bytes are invalid JSON, answered 422 like any other,
    where FastAPI would answer its own undocumented 400."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise json.JSONDecodeError("the body is not UTF-8", "", exc.start) from exc
            self._json = json.loads(text)
        return self._json


class JsonApiRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def utf8_json(request: Request) -> Response:
            return await handler(Utf8JsonRequest(request.scope, request.receive))

        return utf8_json


router = APIRouter(prefix="/api", tags=["tasks"], route_class=JsonApiRoute)
Authenticated = Annotated[Caseworker, Depends(api_caseworker)]


@router.get("/tasks", response_model=TaskList, responses=answers(401), openapi_extra=READING)
def list_tasks(request: Request, caseworker: Authenticated) -> TaskList:
    """The open tasks of the caller's unit: overdue first, then by priority and due-by."""
    svc = services(request)
    now = svc.clock()
    found = svc.store.open_tasks(caseworker.kommunekode, caseworker.unit)
    return TaskList(
        kommunekode=caseworker.kommunekode,
        unit=caseworker.unit,
        tasks=[task_out(t, now) for t in inbox_order(found, now)],
    )


@router.get(
    "/tasks/{task_id}", response_model=TaskOut, responses=answers(401, 404), openapi_extra=READING
)
def get_task(request: Request, task_id: str, caseworker: Authenticated) -> TaskOut:
    """One task of the caller's unit, taken over or not."""
    svc = services(request)
    try:
        found = find_task(svc.store, caseworker, task_id)
    except TakeOverRefused as refused:
        raise _http_error(refused) from refused
    return task_out(found, svc.clock())


@router.post(
    "/tasks/{task_id}/take-over",
    response_model=TaskOut,
    responses=answers(401, 403, 404, 409, 422, 503),
    openapi_extra=WRITING,
)
def take_over(
    request: Request,
    task_id: str,
    caseworker: Authenticated,
    body: Annotated[TakeOverIn | None, Body()] = None,
) -> TaskOut:
    """Take the task over: published to Kafka (task-acks.<kommunekode>) first, recorded once
    acknowledged.

    Taking over a task one has already taken over is a success that sends nothing again."""
    svc = services(request)
    note = body.note if body else None
    with request_span(request, "/api/tasks/{task_id}/take-over"):
        try:
            result = svc.take_overs.take_over(caseworker, task_id, note, svc.clock())
        except TakeOverRefused as refused:
            raise _http_error(refused) from refused
    return task_out(result.task, svc.clock())


@router.get(
    "/escalations", response_model=EscalationList, responses=answers(401), openapi_extra=READING
)
def list_escalations(request: Request, caseworker: Authenticated) -> EscalationList:
    """Escalations for the caller's unit whose task is not taken over yet."""
    found = services(request).store.escalations(caseworker.kommunekode, caseworker.unit)
    return EscalationList(
        kommunekode=caseworker.kommunekode,
        unit=caseworker.unit,
        escalations=[escalation_out(e) for e in found],
    )


def install_openapi(app: FastAPI) -> None:
    """The document with the security schemes, and without FastAPI's default 422 where no
    route parameter can be invalid (a path segment is any string)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            components = document.setdefault("components", {})
            components["securitySchemes"] = SECURITY_SCHEMES
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    answer = operation["responses"].get("422", {})
                    if "HTTPValidationError" in json.dumps(answer):
                        del operation["responses"]["422"]
            for name in ("HTTPValidationError", "ValidationError"):
                components.get("schemas", {}).pop(name, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _http_error(refused: TakeOverRefused) -> HTTPException:
    """The refusal as its HTTP status; a 503 says when to try again."""
    retry = {"Retry-After": str(refused.retry_after_s)} if refused.retry_after_s else None
    return HTTPException(refused.status, refused.reason, headers=retry)
