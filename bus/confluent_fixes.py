"""Where ungebus steps around a bug of confluent-kafka's librdkafka, and why.

Written for confluent-kafka 2.16.1 on librdkafka 2.16.0; the module refuses to load on other
versions (:func:`check_versions`). After an upgrade, run the test that shows the bug
(``tests/faults/test_coordinator_moved.py``, on the three-node cluster): if the admin API no
longer fails there, the fix below may go, and with it this module.

- **Reading a consumer group's committed offsets with the admin API can crash the process**
  (SIGSEGV, no Python exception, nothing in the log), or, in some runs, leave the request
  unanswered. ``AdminClient.list_consumer_group_offsets``
  sends its OffsetFetch to the coordinator the client has cached. When that broker is no longer
  the group's coordinator (it restarted, or leadership of ``__consumer_offsets`` moved), it
  answers NOT_COORDINATOR, and librdkafka then asks the client's consumer group to look the
  coordinator up again: ``rd_kafka_handle_OffsetFetch`` calls ``rd_kafka_cgrp_op`` with the
  client's group handle, which an admin client does not have (a NULL pointer). Upstream:
  https://github.com/confluentinc/librdkafka/issues/5040 (open; the same line is in librdkafka's
  master of July 2026). It took the whole test run down once (the fault suite's F2, whose probe
  read the routers' offsets while the cluster's coordinators moved), and the router's own
  liveness probe read its offsets the same way. :class:`CommittedOffsets` reads them through a
  consumer handle of the group instead: it has a group handle, so the same answer makes it look
  the coordinator up again, and the read is retried or fails with a ``KafkaException``. The handle
  never subscribes, so it never joins the group, and it never commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from types import TracebackType
from typing import Any

import confluent_kafka
from confluent_kafka import Consumer, TopicPartition

WRITTEN_FOR = {"confluent-kafka": "2.16.1", "librdkafka": "2.16.0"}

Partition = tuple[str, int]


class UnsupportedVersion(RuntimeError):
    """confluent-kafka or its librdkafka is not the version this module was written for."""


def installed_versions() -> dict[str, str]:
    return {
        "confluent-kafka": metadata.version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
    }


def check_versions(versions: Callable[[], dict[str, str]] = installed_versions) -> None:
    """Refuse to run on versions the fix was not checked against (:class:`UnsupportedVersion`)."""
    found = versions()
    wrong = {name: found[name] for name in WRITTEN_FOR if found[name] != WRITTEN_FOR[name]}
    if wrong:
        installed = ", ".join(f"{name} {version}" for name, version in wrong.items())
        written = ", ".join(f"{name} {version}" for name, version in WRITTEN_FOR.items())
        raise UnsupportedVersion(
            f"bus.confluent_fixes was written for {written}, but {installed} is installed. "
            "Install the pinned version (pyproject.toml), or run "
            "tests/faults/test_coordinator_moved.py against the new one and read "
            "bus/confluent_fixes.py first."
        )


check_versions()


class CommittedOffsets:
    """A consumer group's committed offsets, read through a consumer handle of that group that
    never joins it (the admin API's way can crash the process, see the module's text).

    Blocking: run it in a thread from async code. Close it (or use it as a context manager).
    """

    def __init__(self, config: Mapping[str, Any], group: str) -> None:
        self.group = group
        self._consumer = Consumer(
            {
                **config,
                "group.id": group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
            }
        )

    def read(
        self, partitions: Iterable[Partition], timeout_s: float = 10.0
    ) -> dict[Partition, int]:
        """Each partition the group has committed an offset for, with that offset (a partition
        it never committed is left out). ``KafkaException`` when Kafka does not answer in
        ``timeout_s``."""
        asked = [TopicPartition(topic, partition) for topic, partition in partitions]
        if not asked:
            return {}
        answer = self._consumer.committed(asked, timeout=timeout_s)
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in answer
            if tp.error is None and tp.offset >= 0
        }

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> CommittedOffsets:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
