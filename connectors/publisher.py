"""Publishing to Kafka with an answer: a record counts only once the broker acknowledged it.

One confluent-kafka producer (``settings.producer_config()``: idempotent, acks=all, the
murmur2 partitioner) per process. The HTTP API awaits each record's delivery report as an
asyncio future, fed by a thread that keeps the producer polled; the file drop sends a batch and
flushes it.

Each record is sent inside a PRODUCER span ``send <topic>`` whose context becomes the record's
``traceparent``: a child of the request's span (HTTP), or its own trace linked to the file's
span (file drop), so every partner event is one trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode

from bus import telemetry
from connectors.ingest import Outgoing
from connectors.tracing import producer_attributes, tracer

DeliveryCallback = Callable[[KafkaError | None, Message], None]
Headers = list[tuple[str, str | bytes | None]]


class PublishError(RuntimeError):
    """Kafka did not acknowledge a record (broker down, slow, queue full)."""


class KafkaPublisher:
    def __init__(self, producer_config: dict[str, Any]) -> None:
        # librdkafka's own log lines (broker down, ...) go to Python logging, served by poll().
        self._producer = Producer(producer_config, logger=logging.getLogger("ungebus.kafka"))
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Poll in the background: delivery reports reach the awaiting requests."""
        if self._poller is None:
            self._poller = threading.Thread(
                target=self._poll_loop, name="kafka-delivery-reports", daemon=True
            )
            self._poller.start()

    def close(self, timeout_s: float = 10.0) -> int:
        """Deliver what is queued (up to ``timeout_s``); return the number left undelivered."""
        left: int = self._producer.flush(timeout_s)
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
            self._poller = None
        if left:
            self._producer.purge()  # given up on: never sent after this answer
        self._producer.close()
        return left

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    def _produce(self, out: Outgoing, headers: Headers, on_delivery: DeliveryCallback) -> None:
        self._producer.produce(
            out.topic, value=out.value, key=out.key, headers=headers, on_delivery=on_delivery
        )

    @staticmethod
    def _start_span(out: Outgoing, context: Context | None, links: list[Link]) -> trace.Span:
        return tracer.start_span(
            telemetry.span_name("send", out.topic),
            context=context,
            kind=SpanKind.PRODUCER,
            attributes=producer_attributes(
                out.topic, out.event_id, out.event_kind, out.source_kind, out.partner
            ),
            links=links,
        )

    # -- one record, awaited ----------------------------------------------------------------
    async def publish(self, out: Outgoing, wait_s: float) -> None:
        """Send ``out``; return once Kafka acknowledged it, else raise PublishError."""
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[tuple[int, int]] = loop.create_future()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            loop.call_soon_threadsafe(_settle, acked, err, msg)

        span = self._start_span(out, None, [])
        try:
            headers = telemetry.inject(out.headers, trace.set_span_in_context(span))
            try:
                self._produce(out, headers, on_delivery)
            except BufferError:
                raise PublishError("the send queue to Kafka is full") from None
            except KafkaException as exc:
                raise PublishError(f"Kafka refused the record: {exc.args[0].str()}") from None
            try:
                partition, offset = await asyncio.wait_for(acked, wait_s)
            except TimeoutError:
                raise PublishError(f"Kafka did not acknowledge within {wait_s:.0f} s") from None
            span.set_attributes(
                telemetry.messaging_attributes("send", out.topic, partition, offset)
            )
        except PublishError as exc:
            span.set_status(Status(StatusCode.ERROR, str(exc)))  # our words, no record content
            raise
        finally:
            span.end()

    # -- a batch, flushed -------------------------------------------------------------------
    def publish_batch(
        self, outs: Sequence[Outgoing], timeout_s: float, link: SpanContext | None = None
    ) -> list[str]:
        """Send every record and wait; return the errors (empty when all were acknowledged).

        With ``link`` (the file's span), each record's span starts a trace of its own that
        links to it; without, the spans are children of the current span.
        """
        errors: list[str] = []
        spans: list[trace.Span] = []

        def delivered(span: trace.Span, out: Outgoing) -> DeliveryCallback:
            def on_delivery(err: KafkaError | None, msg: Message) -> None:
                if err is not None:
                    errors.append(err.str())
                if not span.is_recording():  # tracing off, or given up on already
                    return
                if err is not None:
                    span.set_status(Status(StatusCode.ERROR, f"not stored: {err.str()}"))
                else:
                    span.set_attributes(
                        telemetry.messaging_attributes(
                            "send", out.topic, msg.partition(), msg.offset()
                        )
                    )
                span.end()

            return on_delivery

        root, links = (Context(), [Link(link)]) if link is not None else (None, [])
        deadline = time.monotonic() + timeout_s
        try:
            for out in outs:
                span = self._start_span(out, root, links)
                spans.append(span)
                headers = telemetry.inject(out.headers, trace.set_span_in_context(span))
                while True:
                    try:
                        self._produce(out, headers, delivered(span, out))
                        break
                    except BufferError:  # queue full: let deliveries drain it
                        if time.monotonic() > deadline:
                            return [*errors, "the send queue to Kafka stayed full"]
                        self._producer.poll(0.1)
            left = self._producer.flush(max(0.0, deadline - time.monotonic()))
            if left:
                errors.append(f"{left} records not acknowledged within {timeout_s:.0f} s")
            return errors
        finally:
            for span in spans:
                if span.is_recording():  # no delivery report: never acknowledged
                    span.set_status(Status(StatusCode.ERROR, "not acknowledged in time"))
                    span.end()


def _settle(acked: asyncio.Future[tuple[int, int]], err: KafkaError | None, msg: Message) -> None:
    if acked.done():  # the request gave up waiting already
        return
    if err is None:
        acked.set_result((msg.partition() or 0, msg.offset() or 0))
    else:
        with contextlib.suppress(asyncio.InvalidStateError):
            acked.set_exception(PublishError(f"Kafka did not store the record: {err.str()}"))
