"""The inbox's web app: ``create_app(services)``; sign-in, sessions, CSRF, security headers.

Caseworkers sign in with a password (session cookie, signed); case-management systems use a
bearer token. Either way a request acts as one caseworker, who sees one municipality's unit.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from bus import http_errors
from consumers.inbox.caseworkers import Caseworker, Caseworkers
from consumers.inbox.settings import InboxSettings
from consumers.inbox.sign_in_limits import SignInLimits
from consumers.inbox.store import TaskStore
from consumers.inbox.take_over import TakeOverService

TEMPLATES = Path(__file__).resolve().parent / "templates"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_COOKIE = "ungebus_inbox"


@dataclass(frozen=True)
class Services:
    """What the routes use; built once by ``consumers.inbox.service``."""

    settings: InboxSettings
    store: TaskStore
    caseworkers: Caseworkers
    take_overs: TakeOverService
    clock: Callable[[], dt.datetime]
    tz: dt.tzinfo
    sign_ins: SignInLimits


class SignInRequired(Exception):
    """A page asked for without a session: answered with a redirect to the sign-in page."""


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def session_caseworker(request: Request) -> Caseworker | None:
    staff_id = request.session.get("staff_id")
    return services(request).caseworkers.get(staff_id) if isinstance(staff_id, str) else None


def page_caseworker(request: Request) -> Caseworker:
    caseworker = session_caseworker(request)
    if caseworker is None:
        raise SignInRequired
    return caseworker


def api_caseworker(request: Request) -> Caseworker:
    """Bearer token first; else the session (then unsafe methods need the CSRF header)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        caseworker = services(request).caseworkers.by_token(token.strip())
        if caseworker is None:
            raise _unauthorized("The bearer token is not valid.")
        return caseworker
    caseworker = session_caseworker(request)
    if caseworker is None:
        raise _unauthorized("Sign in, or send a bearer token.")
    if request.method not in ("GET", "HEAD"):
        check_csrf(request, request.headers.get(CSRF_HEADER))
    return caseworker


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def csrf_token(request: Request) -> str:
    """This session's CSRF token, made on first use."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.session.get(CSRF_FIELD)
    if not (
        isinstance(expected, str) and submitted and secrets.compare_digest(expected, submitted)
    ):
        raise HTTPException(
            403, "The form has expired or did not come from this inbox; reload it and try again."
        )


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    # Pages hold personal data: never cached, never framed, no outside resources.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if not request.url.path.startswith("/api/docs"):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        )
    return response


def create_app(app_services: Services, session_secret: str) -> FastAPI:
    from consumers.inbox import api, pages

    settings = app_services.settings
    app = FastAPI(
        title="ungebus inbox",
        summary="Routed tasks of one municipality's units, for caseworkers to take over.",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.services = app_services
    app.state.templates = Jinja2Templates(directory=TEMPLATES)
    app.middleware("http")(_security_headers)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret,
        session_cookie=SESSION_COOKIE,
        max_age=int(settings.inbox_session_hours * 3600),
        same_site="lax",
        https_only=settings.inbox_secure_cookies,
    )

    async def sign_in_first(request: Request, _exc: Exception) -> Response:
        return RedirectResponse("/login", status_code=303)

    app.add_exception_handler(SignInRequired, sign_in_first)
    app.include_router(pages.router)
    app.include_router(api.router)
    http_errors.install(app)
    api.install_openapi(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
