"""Follow one routed event to its take-over, and print its trace (``ungebus demo``'s last step).

A demo caseworker with an API token (``demo-api-<unit>``, added to the inbox's users file)
takes over the event's task in the inbox, as a caseworker would with the Take over button;
then the event's path is read from the span files that ``ungebus trace`` reads.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx

from bus.telemetry import OUTCOME
from bus.telemetry.trace_cli import Span, attributes, load_spans, render, select_event
from consumers.inbox.caseworkers import Caseworker, add_account
from consumers.inbox.settings import InboxSettings
from deploy.local.play import Waits
from deploy.local.stack import StackSettings
from deploy.local.traffic import TrafficError

Example = tuple[str, str, str]  # event id, unit, task id of an event routed to the inbox's muni
# Spans reach the files in batches (every few seconds): wait that long for the last hop.
SPANS_WRITTEN_S = 20.0


def take_over_and_trace(
    settings: StackSettings, example: Example, waits: Waits, echo: Callable[[str], None]
) -> None:
    event_id, unit, task_id = example
    inbox = InboxSettings(var_dir=settings.var_dir, inbox_kommunekode=settings.inbox_kommunekode)
    caseworker = Caseworker(f"demo-api-{unit}", settings.inbox_kommunekode, unit)
    token = add_account(inbox.users_file, caseworker, secrets.token_urlsafe(16), api_token=True)
    api = httpx.Client(
        base_url=settings.inbox_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    with api:
        waits.until(
            lambda: api.get(f"/api/tasks/{task_id}").status_code == 200,
            30,
            f"task {task_id} did not reach the inbox",
        )
        answer = api.post(f"/api/tasks/{task_id}/take-over", json={"note": "demo"})
        if answer.status_code != 200:
            raise TrafficError(f"the take-over of task {task_id} was refused: {answer.text}")
    echo(f"\n{caseworker.staff_id} took over task {task_id}. The event's trace:")

    def spans() -> list[Span]:
        return select_event(load_spans(settings.traces_dir), event_id)

    acks_topic = settings.topics.task_acks_of(settings.inbox_kommunekode)

    def closed() -> bool:  # the tracker's span for the take-over: the last hop
        return any(
            str(s.get("name")) == f"process {acks_topic}"
            and attributes(s).get(OUTCOME) == "taken_over"
            for s in spans()
        )

    waits.at_most(closed, SPANS_WRITTEN_S)
    echo("\n".join(render(spans())))
    echo(f"(again any time: .venv/bin/ungebus trace {event_id})")
