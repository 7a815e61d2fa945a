"""The caseworker's pages: sign in, the unit's open tasks, one task, take over."""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from consumers.inbox import labels
from consumers.inbox.caseworkers import Caseworker
from consumers.inbox.take_over import TakeOverRefused, find_task
from consumers.inbox.tasks import inbox_order
from consumers.inbox.tracing import request_span
from consumers.inbox.views import escalation_view, task_view
from consumers.inbox.web import (
    CSRF_FIELD,
    check_csrf,
    csrf_token,
    page_caseworker,
    services,
    session_caseworker,
)

router = APIRouter(include_in_schema=False)
# Sign-ins and their refusals, naming the account and the client address (never a password).
audit = logging.getLogger("ungebus.inbox.audit")
SignedIn = Annotated[Caseworker, Depends(page_caseworker)]


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    caseworker: Caseworker | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    base = {
        "caseworker": caseworker,
        "csrf_token": csrf_token(request),
        "csrf_field": CSRF_FIELD,
        "flash": request.session.pop("flash", None),
    }
    if caseworker is not None:
        base["unit"] = labels.unit_label(caseworker.unit)
        base["municipality"] = labels.municipality(caseworker.kommunekode)
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status_code
    )
    return response


def client_address(request: Request) -> str:
    """The address uvicorn saw (a proxy on 127.0.0.1 may name the client in X-Forwarded-For)."""
    return request.client.host if request.client else "unknown"


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/tasks", status_code=303)


@router.get("/login")
def login_page(request: Request) -> Response:
    if session_caseworker(request) is not None:
        return RedirectResponse("/tasks", status_code=303)
    return render(request, "login.html", {"error": None, "staff_id": ""})


@router.post("/login")
def login(
    request: Request,
    staff_id: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    check_csrf(request, csrf)
    svc = services(request)
    account, address = staff_id.strip(), client_address(request)
    refused = svc.sign_ins.check(account, address)
    if refused is not None:  # before the password is looked at: no guessing past the limit
        audit.warning(
            "sign-in refused: account %r from %s; %d failed sign-ins %s within %g s, "
            "retry after %d s",
            account,
            address,
            refused.failures,
            "for the account" if refused.by == "account" else "from the address",
            refused.window_s,
            refused.retry_after_s,
        )
        minutes = math.ceil(refused.retry_after_s / 60)
        context = {
            "error": f"Too many failed sign-ins. Try again in {minutes} minute"
            + ("s." if minutes != 1 else "."),
            "staff_id": staff_id,
        }
        response = render(request, "login.html", context, status_code=429)
        response.headers["Retry-After"] = str(refused.retry_after_s)
        return response
    caseworker = svc.caseworkers.sign_in(account, password)
    if caseworker is None:
        svc.sign_ins.failed(account, address)
        audit.info("sign-in failed: account %r from %s", account, address)
        context = {"error": "Wrong staff id or password.", "staff_id": staff_id}
        return render(request, "login.html", context, status_code=401)
    svc.sign_ins.succeeded(account)
    audit.info("signed in: account %r from %s", account, address)
    request.session.clear()  # a fresh session (and CSRF token) for the signed-in caseworker
    request.session["staff_id"] = caseworker.staff_id
    return RedirectResponse("/tasks", status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "") -> Response:
    check_csrf(request, csrf)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/tasks")
def task_list(request: Request, caseworker: SignedIn) -> Response:
    svc = services(request)
    now = svc.clock()
    kommunekode, unit = caseworker.kommunekode, caseworker.unit
    open_tasks = inbox_order(svc.store.open_tasks(kommunekode, unit), now)
    context = {
        "tasks": [task_view(t, now, svc.tz) for t in open_tasks],
        "escalations": [
            escalation_view(e, svc.tz) for e in svc.store.escalations(kommunekode, unit)
        ],
        "known": {t.task.task_id for t in open_tasks},
        "taken": [
            task_view(t, now, svc.tz) for t in svc.store.recently_taken_over(kommunekode, unit)
        ],
    }
    return render(request, "tasks.html", context, caseworker)


@router.get("/tasks/{task_id}")
def task_page(request: Request, task_id: str, caseworker: SignedIn) -> Response:
    svc = services(request)
    try:
        found = find_task(svc.store, caseworker, task_id)
    except TakeOverRefused as refused:
        return _refused(request, caseworker, refused)
    context = {"task": task_view(found, svc.clock(), svc.tz), "error": None}
    return render(request, "task.html", context, caseworker)


@router.post("/tasks/{task_id}/take-over")
def take_over(
    request: Request,
    task_id: str,
    caseworker: SignedIn,
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    try:
        check_csrf(request, csrf)
    except HTTPException as exc:
        return _error(request, caseworker, exc.status_code, str(exc.detail))
    svc = services(request)
    with request_span(request, "/tasks/{task_id}/take-over"):
        try:
            result = svc.take_overs.take_over(caseworker, task_id, note, svc.clock())
        except TakeOverRefused as refused:
            return _refused(request, caseworker, refused)
    if result.published:
        request.session["flash"] = "You took over this task; the unit's acknowledgement is sent."
        if not result.note_shared:
            request.session["flash"] += (
                " Your note was not sent with it (the young person's data key is erased); "
                "it is kept in this inbox only."
            )
    return RedirectResponse(f"/tasks/{task_id}", status_code=303)


def _refused(request: Request, caseworker: Caseworker, refused: TakeOverRefused) -> Response:
    return _error(request, caseworker, refused.status, refused.reason)


def _error(request: Request, caseworker: Caseworker, status: int, message: str) -> Response:
    context = {"status": status, "message": message}
    return render(request, "error.html", context, caseworker, status_code=status)
