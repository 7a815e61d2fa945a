"""The JSON API, mirroring the page, for case-management systems that pull tasks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request

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
from consumers.inbox.web import api_caseworker, services

router = APIRouter(prefix="/api", tags=["tasks"])
Authenticated = Annotated[Caseworker, Depends(api_caseworker)]
_REFUSALS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such task in the caller's unit (unknown or another unit's)"},
    409: {"description": "Already taken over by someone else"},
    503: {"description": "Kafka did not acknowledge; nothing was recorded"},
}


@router.get("/tasks", response_model=TaskList)
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


@router.get("/tasks/{task_id}", response_model=TaskOut, responses={404: _REFUSALS[404]})
def get_task(request: Request, task_id: str, caseworker: Authenticated) -> TaskOut:
    svc = services(request)
    try:
        found = find_task(svc.store, caseworker, task_id)
    except TakeOverRefused as refused:
        raise HTTPException(refused.status, refused.reason) from refused
    return task_out(found, svc.clock())


@router.post("/tasks/{task_id}/take-over", response_model=TaskOut, responses=_REFUSALS)
def take_over(
    request: Request,
    task_id: str,
    caseworker: Authenticated,
    body: Annotated[TakeOverIn | None, Body()] = None,
) -> TaskOut:
    """Take the task over: published to Kafka (task-acks) first, recorded once acknowledged."""
    svc = services(request)
    note = body.note if body else None
    with request_span(request, "/api/tasks/{task_id}/take-over"):
        try:
            result = svc.take_overs.take_over(caseworker, task_id, note, svc.clock())
        except TakeOverRefused as refused:
            raise HTTPException(refused.status, refused.reason) from refused
    return task_out(result.task, svc.clock())


@router.get("/escalations", response_model=EscalationList)
def list_escalations(request: Request, caseworker: Authenticated) -> EscalationList:
    """Escalations for the caller's unit whose task is not taken over yet."""
    found = services(request).store.escalations(caseworker.kommunekode, caseworker.unit)
    return EscalationList(
        kommunekode=caseworker.kommunekode,
        unit=caseworker.unit,
        escalations=[escalation_out(e) for e in found],
    )
