"""``ungebus.consumer.lag``: one gauge per meter, fed by every consumer that registers a reader."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from bus.telemetry import state
from bus.telemetry.attributes import LAG_METRIC

LagReader = Callable[[], Mapping[tuple[str, int], int]]


class LagGauge:
    """A registered lag source; ``close()`` when its consumer closes."""

    def __init__(self, sources: dict[int, tuple[str, LagReader]], key: int) -> None:
        self._sources, self._key = sources, key

    def close(self) -> None:
        with state.LOCK:
            self._sources.pop(self._key, None)


_LAG_SOURCES: dict[int, dict[int, tuple[str, LagReader]]] = {}  # id(meter) -> sources
_LAG_IDS = iter(range(1, 1 << 62))


def consumer_lag_gauge(meter: metrics.Meter, group: str, read: LagReader) -> LagGauge:
    """``ungebus.consumer.lag``: ``read()`` gives {(topic, partition): messages behind}.

    ``read`` is called at each collection (Prometheus scrape, OTLP export), so it should
    return values the consumer loop already computed, not ask the broker.
    """
    with state.LOCK:
        sources = _LAG_SOURCES.get(id(meter))
        if sources is None:
            sources = _LAG_SOURCES[id(meter)] = {}

            def observe(_options: CallbackOptions) -> Iterable[Observation]:
                with state.LOCK:
                    current = list(sources.values())
                for group_name, reader in current:
                    try:
                        lags = dict(reader())
                    except Exception:  # a consumer closing mid-scrape: skip it this time
                        continue
                    for (topic, partition), lag in lags.items():
                        yield Observation(
                            lag,
                            {
                                "messaging.consumer.group.name": group_name,
                                "messaging.destination.name": topic,
                                "messaging.destination.partition.id": str(partition),
                            },
                        )

            meter.create_observable_gauge(
                LAG_METRIC,
                [observe],
                unit="{message}",
                description="messages on the partition not yet consumed by the group",
            )
        key = next(_LAG_IDS)
        sources[key] = (group, read)
        return LagGauge(sources, key)
