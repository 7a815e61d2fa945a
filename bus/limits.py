"""How large a record may be: the limits, defined once, and checked against each other at start.

Three limits must nest, or one large record stops a component (DESIGN.md, known traps):

1. ``UNGEBUS_MAX_RECORD_BYTES``: the codec's limit, the largest record a component decodes.
   A dead letter copies a rejected record whole beside its reason, so this limit plus
   :data:`DEAD_LETTER_OVERHEAD` must stay under
2. ``UNGEBUS_PRODUCER_MESSAGE_MAX_BYTES``, librdkafka's ``message.max.bytes`` (1,000,000 by
   default, a bit under 1 MiB): librdkafka refuses any record over it when it is produced
   (MSG_SIZE_TOO_LARGE). Every component checks its records against it first
   (:meth:`RecordLimits.too_large`), so a record is refused before any of its outputs leaves.
3. Each topic's ``max.message.bytes`` (the broker's ``message.max.bytes`` unless the topic sets
   its own): the broker refuses a record batch over it. A batch holds up to the producer's
   ``message.max.bytes`` plus its header, and lz4 makes incompressible bytes a little longer,
   so the topics must take :func:`batch_bound` of the producer's limit
   (:func:`check_topics`, read from the broker with the admin client).

A record that is too large for a dead letter's copy is dead-lettered by its SHA-256, its size
and where it stays (topic/partition/offset) instead (``schemas.dead_letters``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas import DEFAULT_MAX_SIZE

# librdkafka counts a record as key + value + serialized headers + the v2 record's own fields
# (RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD: 36 bytes of varints); a header adds two length varints.
RECORD_OVERHEAD = 64
HEADER_OVERHEAD = 10
# What a dead letter adds to the record it copies: its reason (at most
# ``schemas.dead_letters.MAX_REASON`` characters), error type, component, event id, source
# topic, digest, timestamps, and its own CloudEvents and trace headers.
DEAD_LETTER_OVERHEAD = 16 * 1024
PRODUCER_MESSAGE_MAX_BYTES = 1_000_000  # librdkafka's default message.max.bytes
BATCH_HEADER = 61  # a Kafka v2 record batch's header
LZ4_SLACK = 1024  # lz4 frame and block headers, beside its n/255 worst-case growth

MAX_RECORD_SETTING = "UNGEBUS_MAX_RECORD_BYTES"
PRODUCER_MAX_SETTING = "UNGEBUS_PRODUCER_MESSAGE_MAX_BYTES"

Headers = Sequence[tuple[str, str | bytes | None]]


class LimitsError(ValueError):
    """The size limits do not nest; the message names the settings and topics to change."""


def record_size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """At least what librdkafka counts against ``message.max.bytes`` for this record."""
    size = RECORD_OVERHEAD + (len(key) if key else 0) + (len(value) if value else 0)
    for name, header in headers:  # asked for every output: keep it cheap
        size += HEADER_OVERHEAD + (len(name) if name.isascii() else len(name.encode()))
        if header:
            size += len(header)
    return size


def batch_bound(producer_max_bytes: int) -> int:
    """The largest record batch a producer with this ``message.max.bytes`` sends, compressed
    with lz4 (incompressible bytes grow by up to 1/255)."""
    return producer_max_bytes + BATCH_HEADER + producer_max_bytes // 255 + LZ4_SLACK


def nesting_problems(max_record_bytes: int, producer_max_bytes: int) -> list[str]:
    """Why the codec's limit and the producer's do not nest (empty when they do)."""
    if max_record_bytes + DEAD_LETTER_OVERHEAD < producer_max_bytes:
        return []
    return [
        f"{MAX_RECORD_SETTING} ({max_record_bytes:,}) plus a dead letter's overhead "
        f"({DEAD_LETTER_OVERHEAD:,} bytes) must be under {PRODUCER_MAX_SETTING} "
        f"({producer_max_bytes:,}, the producer's message.max.bytes): a dead letter that copies "
        f"a record of the largest size decoded would not fit; lower {MAX_RECORD_SETTING} or "
        f"raise {PRODUCER_MAX_SETTING}"
    ]


@dataclass(frozen=True)
class RecordLimits:
    """The limits one component works with (``Settings.record_limits``)."""

    producer_max_bytes: int = PRODUCER_MESSAGE_MAX_BYTES
    max_record_bytes: int = DEFAULT_MAX_SIZE

    def __post_init__(self) -> None:
        problems = nesting_problems(self.max_record_bytes, self.producer_max_bytes)
        if problems:
            raise LimitsError("; ".join(problems))

    def too_large(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers
    ) -> str | None:
        """Why librdkafka would refuse this record, or None when it fits."""
        size = record_size(key, value, headers)
        if size <= self.producer_max_bytes:
            return None
        return (
            f"a record for {topic} would be {size:,} bytes, over the producer's "
            f"message.max.bytes of {self.producer_max_bytes:,} ({PRODUCER_MAX_SETTING})"
        )

    def value_budget(self, key: bytes | None, headers: Headers) -> int:
        """The largest value a record with this key and these headers may have."""
        return self.producer_max_bytes - record_size(key, b"", headers)


UNKNOWN_TOPIC_GRACE_S = 30.0
"""How long a topic may stay unknown to the broker asked, after it was created."""


def check_topics(
    admin_config: Mapping[str, Any], producer_max_bytes: int, topics: Iterable[str]
) -> None:
    """Raise :class:`LimitsError` naming every topic whose ``max.message.bytes`` is under
    :func:`batch_bound` of the producer's limit (one DescribeConfigs request, asked again for
    up to :data:`UNKNOWN_TOPIC_GRACE_S` while a broker does not know a topic yet)."""
    # Imported here: every component's settings import this module, ``ungebus audit`` too.
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

    from bus.waiting import within

    names = sorted(set(topics))
    if not names:
        return
    admin = AdminClient(dict(admin_config))
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    wanted = batch_bound(producer_max_bytes)
    small: list[str] = []
    failure: list[KafkaException] = []

    def described() -> bool:
        """One DescribeConfigs; False while a broker does not know a topic yet (one just
        created on a cluster reaches each broker's metadata a moment later)."""
        small.clear()
        failure.clear()
        try:
            for resource, future in admin.describe_configs(resources, request_timeout=15).items():
                entry = future.result().get("max.message.bytes")
                if entry is not None and entry.value is not None and int(entry.value) < wanted:
                    small.append(f"{resource.name} ({int(entry.value):,})")
        except KafkaException as exc:
            failure.append(exc)
            return exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART
        return True

    if not within(described, UNKNOWN_TOPIC_GRACE_S, every_s=0.5) or failure:
        raise LimitsError(
            f"could not read the topics' max.message.bytes from Kafka: {failure[-1]}"
        ) from failure[-1]
    if small:
        raise LimitsError(
            f"{len(small)} topic(s) take smaller record batches than the producer may send: "
            f"{PRODUCER_MAX_SETTING} is {producer_max_bytes:,}, so a batch can be "
            f"{wanted:,} bytes (with its header and lz4's growth), but max.message.bytes is "
            f"lower for {', '.join(small[:5])}{' ...' if len(small) > 5 else ''}; raise the "
            f"topics' max.message.bytes (or the broker's message.max.bytes) or lower "
            f"{PRODUCER_MAX_SETTING}"
        )
