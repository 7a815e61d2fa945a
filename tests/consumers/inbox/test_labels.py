"""What a caseworker reads: labels, values, and nothing the policy did not allow."""

from __future__ import annotations

import datetime as dt

from consumers.inbox import labels
from consumers.inbox.tasks import Basis, InboxTask, TakeOver, Task
from consumers.inbox.views import NOT_DISCLOSED, task_out, task_view

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
CPR = "1403091234"  # synthetic


def _task(details: dict[str, str], due_in: dt.timedelta = dt.timedelta(days=1)) -> Task:
    return Task(
        task_id="t1",
        event_id="e1",
        event_type="dk.ungebus.release_planning.v1",
        kommunekode="161",
        unit="jobcentre",
        basis=Basis("consent", "consent:release_details", "Forvaltningsloven § 28"),
        consent_id="c-9",
        due_by=NOW + due_in,
        priority="high",
        policy_version="2026-11-27.1",
        subject_pseudonym="ab" * 32,
        details=details,
        routed_at=NOW - dt.timedelta(days=1),
    )


def test_labels_for_known_and_unknown_paths() -> None:
    assert labels.label("envelope.subject.cpr") == "CPR number"
    assert labels.label("envelope.subject.name") == "Name"
    assert labels.label("sensitive.health_summary") == "Health summary"
    assert labels.event_kind("dk.ungebus.release_planning.v1") == "Release planning"
    assert labels.event_kind("something") == "Something"


def test_readable_values() -> None:
    assert labels.readable("envelope.source", {"kind": "prison", "id": "kf-7"}) == "Prison kf-7"
    assert labels.readable("from_kommunekode", "151") == "Ballerup (151)"
    assert labels.readable("needs", ["housing", "job"]) == "housing; job"
    assert labels.readable("coordinator", {"name": "A", "phone": None}) == "Name: A"
    assert labels.readable("x", None) == "—"
    assert labels.readable("x", True) == "yes"
    assert labels.parse("not json") == "not json"


def test_identity_and_sender_only_when_allowed() -> None:
    hidden = task_view(InboxTask(_task({"facility_name": '"Vridsløse"'})), NOW, dt.UTC)
    assert hidden.young_person == NOT_DISCLOSED
    assert hidden.sender == "Vridsløse"

    shown = task_view(
        InboxTask(
            _task(
                {
                    "envelope.subject.name": '"Ida Test"',
                    "envelope.subject.cpr": f'"{CPR}"',
                    "envelope.source": '{"id": "kf-7", "kind": "prison"}',
                    "facility_name": '"Vridsløse"',
                }
            )
        ),
        NOW,
        dt.UTC,
    )
    assert shown.young_person == f"Ida Test, {CPR}"
    assert shown.sender == "Vridsløse (Prison kf-7)"
    assert [label for label, _ in shown.fields] == ["Name", "CPR number", "Sent by", "Facility"]


def test_api_shape_carries_only_the_allowed_details() -> None:
    item = InboxTask(
        _task(
            {"envelope.subject.name": '"Ida Test"', "needs": '["housing"]'}, -dt.timedelta(hours=1)
        )
    )
    out = task_out(item, NOW)
    assert out.details == {"envelope.subject.name": "Ida Test", "needs": ["housing"]}
    assert out.labels == {"envelope.subject.name": "Name", "needs": "Needs"}
    assert out.overdue and out.seconds_left == -3600
    assert out.basis.kind == "consent" and out.consent_id == "c-9"

    taken = InboxTask(item.task, TakeOver("jc-1", NOW, None))
    assert not task_out(taken, NOW).overdue
    assert task_view(taken, NOW, dt.UTC).taken_over_by == "jc-1"
