"""A process that reads a consumer group's committed offset twice, the second time after a
line on its stdin, for ``tests/faults/test_coordinator_moved.py``: ``admin`` reads with
``AdminClient.list_consumer_group_offsets``, ``consumer`` with
:class:`bus.confluent_fixes.CommittedOffsets`. Its Kafka login comes as JSON in the
environment variable ``OFFSETS_READER_CONFIG``; each answer is printed as ``offset N``; no
answer within 30 s is exit code :data:`NO_ANSWER`."""

from __future__ import annotations

import json
import os
import sys

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from bus.confluent_fixes import CommittedOffsets

NO_ANSWER = 3


def main(way: str, group: str, topic: str) -> None:
    config = json.loads(os.environ["OFFSETS_READER_CONFIG"])
    if way == "admin":
        admin = AdminClient(config)
        request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])]

        def read() -> int:
            answer = admin.list_consumer_group_offsets(request)[group].result(30)
            return int(answer.topic_partitions[0].offset)
    else:
        offsets = CommittedOffsets(config, group)

        def read() -> int:
            return offsets.read([(topic, 0)], timeout_s=30)[(topic, 0)]

    print(f"offset {read()}", flush=True)
    sys.stdin.readline()  # the test moves the group's coordinator meanwhile
    try:
        print(f"offset {read()}", flush=True)
    except (TimeoutError, KafkaException) as exc:
        print(f"no answer: {exc!r}", flush=True)
        sys.exit(NO_ANSWER)


if __name__ == "__main__":
    main(*sys.argv[1:4])
