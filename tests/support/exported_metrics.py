"""The metric names the code exports to Prometheus, and the metric names a PromQL query reads.

:func:`exported_names` finds every instrument the code makes (each ``meter.create_*(name,
unit=...)`` call in the project's packages, read with :mod:`ast`, so an instrument made only at
run time counts too) and has the real OpenTelemetry Prometheus exporter name them, as a
component's ``/metrics`` does: dots to underscores, the unit as a suffix (``ms`` ->
``_milliseconds``, ``{record}`` -> nothing), ``_total`` on counters, ``_bucket``/``_sum``/
``_count`` on histograms.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bus.settings import PROJECT_ROOT

PACKAGES = ("bus", "connectors", "consumers", "streams")  # what runs in production
CREATE = frozenset(
    {
        "create_counter",
        "create_up_down_counter",
        "create_histogram",
        "create_gauge",
        "create_observable_counter",
        "create_observable_gauge",
        "create_observable_up_down_counter",
    }
)


@dataclass(frozen=True)
class Instrument:
    create: str  # the meter method, e.g. create_counter
    name: str  # the OpenTelemetry name, e.g. ungebus.deadletters
    unit: str


def _sources(root: Path) -> Iterator[tuple[Path, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(), str(path))


def _constants(modules: Iterable[ast.Module]) -> dict[str, set[str]]:
    """Module-level ``NAME = "text"`` of every module: how a name passed as a constant reads."""
    found: dict[str, set[str]] = {}
    for module in modules:
        for node in module.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                        found.setdefault(target.id, set()).add(node.value.value)
    return found


def instruments(root: Path = PROJECT_ROOT) -> set[Instrument]:
    """Every ``*.create_<instrument>(name, ..., unit=...)`` call; fails on a name it cannot read
    (a name made at run time would escape the dashboard's check)."""
    modules = list(_sources(root))
    constants = _constants(module for _path, module in modules)
    found: set[Instrument] = set()
    for path, module in modules:
        for node in ast.walk(module):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in CREATE
            ):
                continue
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            name_node = node.args[0] if node.args else keywords.get("name")
            unit_node = keywords.get("unit", ast.Constant(""))
            where = f"{path.relative_to(root)}:{node.lineno}"
            found.add(
                Instrument(
                    node.func.attr,
                    _text(name_node, constants, where),
                    _text(unit_node, constants, where),
                )
            )
    return found


def _text(node: ast.expr | None, constants: dict[str, set[str]], where: str) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and len(constants.get(node.id, ())) == 1:
        return next(iter(constants[node.id]))
    raise ValueError(f"{where}: an instrument's name or unit that is not a string constant")


def exported_names(found: Iterable[Instrument]) -> set[str]:
    """The sample names the OpenTelemetry Prometheus exporter gives these instruments."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry

    def one(_options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(1)]

    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    meter = provider.get_meter("exported-names")
    try:
        for instrument in found:
            create = getattr(meter, instrument.create)
            if instrument.create.startswith("create_observable"):
                create(instrument.name, callbacks=[one], unit=instrument.unit)
            elif instrument.create == "create_histogram":
                create(instrument.name, unit=instrument.unit).record(1)
            elif instrument.create == "create_gauge":
                create(instrument.name, unit=instrument.unit).set(1)
            else:
                create(instrument.name, unit=instrument.unit).add(1)
        return {sample.name for family in registry.collect() for sample in family.samples}
    finally:
        provider.shutdown()


# -- PromQL --------------------------------------------------------------------------------------
_AGGREGATIONS = ("sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk",
                 "quantile", "count_values", "group", "limitk", "limit_ratio")  # fmt: skip
_OPERATORS = ("by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
              "or", "unless", "offset", "inf", "nan")  # fmt: skip
_KEYWORDS = frozenset((*_AGGREGATIONS, *_OPERATORS))
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$])[A-Za-z_:][\w:]*")


def query_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions,
    keywords, label names (in ``{...}`` or ``by (...)``), durations or numbers."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _LABEL_LIST.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word, rest = match.group(), text[match.end() :].lstrip()
        if rest.startswith("(") or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names
