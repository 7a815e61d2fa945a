"""The routing policy: a data file a data protection officer can read, loaded and checked here.

Loading fails with one readable error that lists every problem (unknown unit, a field the
event does not have, a basis that is not defined) rather than at the first routed event.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.domain import KOMMUNEKODER, UNITS
from schemas.paths import field_paths

DEFAULT_POLICY = Path(__file__).parent.parent / "policy.toml"  # streams/policy.toml: the DPO's file
CONSENT_PREFIX = "consent:"
RESIDENCE = "residence"

PARTNER_EVENTS = ("dropout_notice", "release_planning", "handover", "school_absence_signal")
SOURCE_KINDS = ("institution", "school", "prison", "psychiatric_ward", "municipality", "uu_centre")

Priority = Literal["urgent", "high", "normal"]


class PolicyError(ValueError):
    """The policy file cannot be used; the message lists every problem found."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgeBand(_Strict):
    min: int = Field(default=0, ge=0)
    max: int = Field(default=150, ge=0)

    def covers(self, age: int) -> bool:
        return self.min <= age <= self.max


class Bounds(_Strict):
    min: float | None = None
    max: float | None = None

    def covers(self, value: object) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class WithConsent(_Strict):
    purpose: str
    fields: tuple[str, ...]


class TakeOverWithin(_Strict):
    working_days: int | None = Field(default=None, ge=0)
    days: int | None = Field(default=None, ge=0)
    hours: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> TakeOverWithin:
        given = [v for v in (self.working_days, self.days, self.hours) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of working_days, days or hours")
        return self


class Rule(_Strict):
    id: str
    event: str
    sources: tuple[str, ...]
    age: AgeBand = AgeBand()
    when: Mapping[str, str | int | float | bool | Bounds] = Field(default_factory=dict)
    unit: str
    municipality: str
    basis: str
    fields: tuple[str, ...]
    with_consent: WithConsent | None = None
    take_over_within: TakeOverWithin
    priority: Priority = "normal"

    @property
    def consent_purpose(self) -> str | None:
        """The purpose a consent must cover for this route, if it rests on consent."""
        return self.basis.removeprefix(CONSENT_PREFIX) if self.needs_consent else None

    @property
    def needs_consent(self) -> bool:
        return self.basis.startswith(CONSENT_PREFIX)

    # The paths a routed task's details carry, sorted, each once; derived from the frozen
    # fields once per rule instead of for every routed event.
    @cached_property
    def detail_paths(self) -> tuple[str, ...]:
        """What the unit sees on this rule alone."""
        return tuple(sorted(set(self.fields)))

    @cached_property
    def detail_paths_with_consent(self) -> tuple[str, ...]:
        """What the unit sees while the ``with_consent`` consent is active."""
        extra = self.with_consent.fields if self.with_consent is not None else ()
        return tuple(sorted({*self.fields, *extra}))


class Basis(_Strict):
    citation: str
    summary: str = ""


class Purpose(_Strict):
    summary: str


class Policy(_Strict):
    version: str
    hold_for_days: int = Field(ge=1)
    bases: Mapping[str, Basis]
    purposes: Mapping[str, Purpose] = Field(default_factory=dict)
    rules: tuple[Rule, ...]

    @cached_property
    def rules_by_event(self) -> Mapping[str, tuple[Rule, ...]]:
        """Rules per event kind, in file order: the router looks only at these."""
        index: dict[str, list[Rule]] = defaultdict(list)
        for rule in self.rules:
            index[rule.event].append(rule)
        return {event: tuple(rules) for event, rules in index.items()}

    @cached_property
    def _candidates(self) -> dict[tuple[str, str, int], tuple[Rule, ...]]:
        return {}

    def candidates(self, event: str, source_kind: str, age: int) -> tuple[Rule, ...]:
        """The rules for ``event`` from a ``source_kind`` about someone of ``age``, in file
        order: worked out once per combination (a few dozen in practice) and kept, so a
        decision looks only at rules whose kind, source and age fit, however long the policy;
        the rules' ``when`` conditions are left to the decision."""
        at = (event, source_kind, age)
        found = self._candidates.get(at)
        if found is None:
            found = self._candidates[at] = tuple(
                rule
                for rule in self.rules_by_event.get(event, ())
                if source_kind in rule.sources and rule.age.covers(age)
            )
        return found

    def citation(self, basis: str) -> str:
        if basis.startswith(CONSENT_PREFIX):
            purpose = basis.removeprefix(CONSENT_PREFIX)
            return f"Samtykke: {self.purposes[purpose].summary}"
        return self.bases[basis].citation


def load_policy(path: Path = DEFAULT_POLICY) -> Policy:
    """Read and check a policy file; :class:`PolicyError` lists every problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read the policy: {exc}") from exc
    return parse_policy(raw, origin=str(path))


def parse_policy(raw: Mapping[str, object], origin: str = "policy") -> Policy:
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{_location(raw, error['loc'])}: {error['msg']}" for error in exc.errors()]
        raise PolicyError(_report(origin, problems)) from exc
    problems = check_policy(policy)
    if problems:
        raise PolicyError(_report(origin, problems))
    return policy


def check_policy(policy: Policy) -> list[str]:
    """Every way the policy refers to something that does not exist."""
    problems: list[str] = []
    seen: set[str] = set()
    for rule in policy.rules:
        where = f"rule {rule.id}"
        if rule.id in seen:
            problems.append(f"{where}: the rule id is used twice")
        seen.add(rule.id)
        if rule.event not in PARTNER_EVENTS:
            problems.append(f"{where}.event: {rule.event!r} is not one of {PARTNER_EVENTS}")
            continue
        paths = field_paths(rule.event)
        problems += [
            f"{where}.sources: unknown source kind {s!r}"
            for s in rule.sources
            if s not in SOURCE_KINDS
        ]
        if rule.unit not in UNITS:
            problems.append(f"{where}.unit: unknown unit {rule.unit!r}; units are {UNITS}")
        if rule.municipality != RESIDENCE and rule.municipality not in paths:
            problems.append(
                f"{where}.municipality: {rule.municipality!r} is neither 'residence' "
                f"nor a field of {rule.event}"
            )
        problems += _basis_problems(policy, where, rule.basis)
        fields = list(rule.fields)
        if rule.with_consent is not None:
            fields += rule.with_consent.fields
            if rule.with_consent.purpose not in policy.purposes:
                problems.append(
                    f"{where}.with_consent.purpose: {rule.with_consent.purpose!r} is not "
                    "a purpose defined under [purposes]"
                )
        problems += [
            f"{where}.fields: {f!r} is not a field of {rule.event}"
            for f in fields
            if f not in paths
        ]
        problems += [
            f"{where}.when: {f!r} is not a field of {rule.event}"
            for f in rule.when
            if f not in paths
        ]
        if rule.age.min > rule.age.max:
            problems.append(f"{where}.age: min {rule.age.min} is above max {rule.age.max}")
    return problems


def _basis_problems(policy: Policy, where: str, basis: str) -> list[str]:
    if basis.startswith(CONSENT_PREFIX):
        purpose = basis.removeprefix(CONSENT_PREFIX)
        if purpose not in policy.purposes:
            return [f"{where}.basis: consent purpose {purpose!r} is not defined under [purposes]"]
        return []
    if basis not in policy.bases:
        return [
            f"{where}.basis: {basis!r} is missing: name a basis defined under [bases] "
            f"or 'consent:<purpose>'"
        ]
    return []


def _location(raw: Mapping[str, object], loc: tuple[int | str, ...]) -> str:
    """rules.3.unit -> 'rule dropout.late_starter.unit' where the rule has an id."""
    parts = [str(p) for p in loc]
    rules = raw.get("rules")
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int) and isinstance(rules, list):
        rule = rules[loc[1]] if loc[1] < len(rules) else None
        name = rule.get("id") if isinstance(rule, dict) else None
        return ".".join([f"rule {name or loc[1]}", *parts[2:]])
    return ".".join(parts)


def _report(origin: str, problems: list[str]) -> str:
    lines = "\n".join(f"  - {p}" for p in problems)
    return f"{origin}: the routing policy has {len(problems)} problem(s):\n{lines}"


def known_municipality(kommunekode: object) -> bool:
    return isinstance(kommunekode, str) and kommunekode in KOMMUNEKODER
