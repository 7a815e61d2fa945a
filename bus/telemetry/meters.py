"""Meters that may be made at import time: instruments that count once ``setup`` ran.

A synchronous instrument (counter, histogram) finds its real counterpart in the current meter
provider on first use after each ``setup`` or ``shutdown`` (a test may set up twice);
observable instruments keep their callbacks and are registered again with every provider
``setup`` makes (:func:`replay_observables`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from opentelemetry import metrics
from opentelemetry.metrics import CallbackT
from opentelemetry.util.types import Attributes

from bus.telemetry import state

V = TypeVar("V")

_NOOP_METER = metrics.NoOpMeter("ungebus")


def _real_meter(name: str) -> metrics.Meter:
    current = state.STATE
    if current is None or current.meter_provider is None:
        return _NOOP_METER
    found = current.meters.get(name)
    if found is None:
        found = current.meters.setdefault(name, current.meter_provider.get_meter(name))
    return found


class _Synchronous:
    """An instrument that finds its real counterpart in the current providers on each use."""

    def __init__(self, meter: str, create: str, name: str, kwargs: Mapping[str, Any]) -> None:
        self._meter, self._create, self._name, self._kwargs = meter, create, name, dict(kwargs)
        self._generation = -1
        self._instrument: Any = None

    def _real(self) -> Any:
        if self._generation != state.GENERATION:
            with state.LOCK:
                self._generation = state.GENERATION
                create = getattr(_real_meter(self._meter), self._create)
                self._instrument = create(self._name, **self._kwargs)
        return self._instrument


class _Counter(_Synchronous, metrics.Counter):
    def add(self, amount: float, attributes: Attributes = None, context: Any = None) -> None:
        self._real().add(amount, attributes, context)


class _UpDownCounter(_Synchronous, metrics.UpDownCounter):
    def add(self, amount: float, attributes: Attributes = None, context: Any = None) -> None:
        self._real().add(amount, attributes, context)


class _Histogram(_Synchronous, metrics.Histogram):
    def record(self, amount: float, attributes: Attributes = None, context: Any = None) -> None:
        self._real().record(amount, attributes, context)


class _Observable(
    metrics.ObservableCounter, metrics.ObservableGauge, metrics.ObservableUpDownCounter
):
    """Callbacks registered with every provider ``setup`` makes, for as long as the process."""

    def __init__(self, create: str, name: str, kwargs: Mapping[str, Any]) -> None:
        self._create, self._name, self._kwargs = create, name, dict(kwargs)


class _KernelMeter(metrics.Meter):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._synchronous: dict[tuple[str, str], Any] = {}
        self._observables: dict[str, _Observable] = {}

    def _sync(self, cls: type[V], create: str, name: str, **kwargs: Any) -> V:
        with state.LOCK:
            found = self._synchronous.get((create, name))
            if found is None:
                found = cls(self.name, create, name, kwargs)  # type: ignore[call-arg]
                self._synchronous[(create, name)] = found
            return found

    def _observable(
        self, create: str, name: str, callbacks: Sequence[CallbackT] | None, **kwargs: Any
    ) -> _Observable:
        with state.LOCK:
            if name in self._observables:
                raise ValueError(f"observable instrument {name} exists already in {self.name}")
            observable = _Observable(create, name, {"callbacks": list(callbacks or ()), **kwargs})
            self._observables[name] = observable
            if state.STATE is not None:
                getattr(_real_meter(self.name), create)(name, **observable._kwargs)
            return observable

    def replay_observables(self) -> None:
        real = _real_meter(self.name)
        for observable in self._observables.values():
            getattr(real, observable._create)(observable._name, **observable._kwargs)

    def create_counter(self, name: str, unit: str = "", description: str = "") -> metrics.Counter:
        return self._sync(_Counter, "create_counter", name, unit=unit, description=description)

    def create_up_down_counter(
        self, name: str, unit: str = "", description: str = ""
    ) -> metrics.UpDownCounter:
        return self._sync(
            _UpDownCounter, "create_up_down_counter", name, unit=unit, description=description
        )

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> metrics.Histogram:
        return self._sync(
            _Histogram,
            "create_histogram",
            name,
            unit=unit,
            description=description,
            explicit_bucket_boundaries_advisory=explicit_bucket_boundaries_advisory,
        )

    def create_observable_counter(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> metrics.ObservableCounter:
        return self._observable(
            "create_observable_counter", name, callbacks, unit=unit, description=description
        )

    def create_observable_gauge(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> metrics.ObservableGauge:
        return self._observable(
            "create_observable_gauge", name, callbacks, unit=unit, description=description
        )

    def create_observable_up_down_counter(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> metrics.ObservableUpDownCounter:
        return self._observable(
            "create_observable_up_down_counter", name, callbacks, unit=unit, description=description
        )


_METERS: dict[str, _KernelMeter] = {}


def meter(name: str) -> metrics.Meter:
    """The meter ``name`` (one per name per process); counts once ``setup`` ran."""
    with state.LOCK:
        found = _METERS.get(name)
        if found is None:
            found = _METERS[name] = _KernelMeter(name)
        return found


def replay_observables() -> None:
    """Register every observable instrument with the providers ``setup`` just made."""
    for proxy in list(_METERS.values()):
        proxy.replay_observables()
