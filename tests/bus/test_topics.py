"""The topic catalogue's take-over topics: one per municipality, and back from a name."""

from __future__ import annotations

import pytest

from bus.topics import SUBJECT_PARTITIONS, Topics, retention_days
from schemas.domain import KOMMUNEKODER


def test_each_municipality_has_its_own_take_over_topic_in_the_catalogue() -> None:
    topics = Topics("t.")
    assert topics.task_acks_of("161") == "t.task-acks.161"
    assert topics.all_task_acks() == [f"t.task-acks.{kk}" for kk in KOMMUNEKODER]
    specs = {spec.name: spec for spec in topics.catalogue()}
    for name in topics.all_task_acks():
        assert specs[name].partitions == SUBJECT_PARTITIONS
        assert specs[name].config == retention_days(365)
    assert "t.task-acks" not in specs  # the one shared topic is gone


def test_a_take_over_topic_names_its_municipality() -> None:
    topics = Topics("t.")
    assert topics.task_acks_kommunekode("t.task-acks.165") == "165"
    for other in ("task-acks.165", "t.task-acks", "t.task-acks.999", "t.tasks.165.youth_unit"):
        assert topics.task_acks_kommunekode(other) is None


def test_no_take_over_topic_for_a_municipality_not_on_the_bus() -> None:
    with pytest.raises(ValueError, match="not a municipality on this bus"):
        Topics().task_acks_of("999")
