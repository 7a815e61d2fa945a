"""The size limits: defined once, nested, and in agreement with librdkafka's own count."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from pydantic import ValidationError

from bus.limits import (
    DEAD_LETTER_OVERHEAD,
    HEADER_OVERHEAD,
    RECORD_OVERHEAD,
    LimitsError,
    RecordLimits,
    batch_bound,
    nesting_problems,
)
from bus.settings import Settings

LIMIT = 200_000


def test_settings_whose_limits_do_not_nest_are_refused_naming_both() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(max_record_bytes=990_000, producer_message_max_bytes=1_000_000)
    assert "UNGEBUS_MAX_RECORD_BYTES (990,000)" in str(refused.value)
    assert "UNGEBUS_PRODUCER_MESSAGE_MAX_BYTES (1,000,000" in str(refused.value)
    with pytest.raises(LimitsError):
        RecordLimits(producer_max_bytes=100_000, max_record_bytes=100_000 - DEAD_LETTER_OVERHEAD)


def test_the_defaults_nest_and_the_producer_gets_its_limit() -> None:
    settings = Settings()
    assert nesting_problems(settings.max_record_bytes, settings.producer_message_max_bytes) == []
    assert settings.producer_config()["message.max.bytes"] == 1_000_000
    assert settings.record_limits == RecordLimits(1_000_000, settings.max_record_bytes)
    # the broker's default max.message.bytes (1 MiB + 12) takes the producer's largest batch
    assert batch_bound(1_000_000) <= 1_048_588


@pytest.fixture(scope="module")
def producer() -> Iterator[Producer]:
    """librdkafka counts sizes in ``produce``, before it needs a broker (there is none)."""
    producer = Producer(
        {"bootstrap.servers": "127.0.0.1:9", "message.max.bytes": LIMIT, "log_level": 0}
    )
    yield producer
    producer.purge()


@pytest.mark.parametrize("key_size", [0, 64, 3000])
@pytest.mark.parametrize("header_count", [0, 1, 40])
def test_a_record_our_check_takes_librdkafka_takes_too(
    producer: Producer, key_size: int, header_count: int
) -> None:
    limits = RecordLimits(producer_max_bytes=LIMIT, max_record_bytes=LIMIT // 2)
    key = b"k" * key_size or None
    headers = [(f"header-{i}", b"v" * i) for i in range(header_count)]
    value = b"x" * limits.value_budget(key, headers)

    assert limits.too_large("t", key, value, headers) is None
    producer.produce("t", key=key, value=value, headers=headers)  # does not raise

    over = value + b"x" * 100
    reason = limits.too_large("t", key, over, headers)
    assert reason is not None and "over the producer's message.max.bytes of 200,000" in reason
    # our count is a little over librdkafka's (headers): a bit more is over its count too
    slack = RECORD_OVERHEAD + HEADER_OVERHEAD * header_count
    with pytest.raises(KafkaException) as refused:
        producer.produce("t", key=key, value=over + b"x" * slack, headers=headers)
    assert refused.value.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    producer.purge()
