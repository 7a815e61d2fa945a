"""Pydantic models for what partners send as JSON: strict, extra fields forbidden.

One model per partner kind. Connectors validate with ``parse_partner`` and answer a rejected
payload with ``field_errors``: a list of ``{"field": "subject.cpr", "reason": ...}`` in plain
words. Inside the bus only Avro travels (see ``schemas.mapping``). Errors never echo input.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas.cpr import CprError, age_on, birth_date, digits
from schemas.domain import DANISH_KOMMUNEKODE_RANGE, KOMMUNEKODER

EARLIEST_DATE = dt.date(2000, 1, 1)
HORIZON = dt.timedelta(days=730)  # no partner date lies more than ~2 years after the event
MIN_AGE, MAX_AGE = 15, 29


def invalid(code: str, reason: str, field: str | None = None) -> PydanticCustomError:
    """A validation error in plain words; ``field`` names it when raised above the field."""
    return PydanticCustomError(code, reason.replace("{", "(").replace("}", ")"), {"field": field})


def _cpr(value: str) -> str:
    try:
        digits(value)
    except CprError as exc:
        raise invalid("cpr_format", str(exc)) from None
    try:
        birth_date(value)
    except CprError as exc:
        raise invalid("cpr_birth_date", str(exc)) from None
    return digits(value)


def _member_kommunekode(value: str) -> str:
    if value not in KOMMUNEKODER:
        known = ", ".join(f"{code} {name}" for code, name in KOMMUNEKODER.items())
        raise invalid("unknown_kommunekode", f"unknown kommunekode {value!r}; the bus has {known}")
    return value


def _danish_kommunekode(value: str) -> str:
    if not (len(value) == 3 and value.isascii() and value.isdigit()):
        raise invalid("unknown_kommunekode", "must be a 3-digit kommunekode, e.g. 161")
    if int(value) not in DANISH_KOMMUNEKODE_RANGE:
        raise invalid("unknown_kommunekode", f"{value} is not a Danish kommunekode (101-860)")
    return value


def _institution_number(value: str) -> str:
    if not (len(value) == 6 and value.isascii() and value.isdigit()):
        raise invalid(
            "institution_number", "must be the 6-digit number from Institutionsregisteret"
        )
    return value


def _identifier(value: str) -> str:
    ok = 1 <= len(value) <= 64 and value.isascii() and value.isprintable() and " " not in value
    if not ok:
        raise invalid("identifier", "must be 1-64 ASCII letters, digits or punctuation, no spaces")
    return value


def _purpose(value: str) -> str:
    ok = 2 <= len(value) <= 64 and value.isascii() and value.replace("_", "").isalnum()
    if not ok or not value[0].isalpha() or value.lower() != value:
        raise invalid(
            "purpose", "must be a purpose name from the routing policy, e.g. dropout_details"
        )
    return value


def _sane_date(value: dt.date) -> dt.date:
    if value < EARLIEST_DATE:
        raise invalid("date_out_of_range", "must not be before 2000-01-01")
    return value


Cpr = Annotated[str, AfterValidator(_cpr), Field(repr=False)]
MemberKommunekode = Annotated[str, AfterValidator(_member_kommunekode)]
DanishKommunekode = Annotated[str, AfterValidator(_danish_kommunekode)]
InstitutionNumber = Annotated[str, AfterValidator(_institution_number)]
Identifier = Annotated[str, AfterValidator(_identifier)]
Purpose = Annotated[str, AfterValidator(_purpose)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
PartnerDate = Annotated[dt.date, AfterValidator(_sane_date)]

UnitName = Literal["youth_unit", "jobcentre", "family_services", "social_services", "ssp"]
ConsentGiverName = Literal["young_person", "custodial_parent"]
ReleaseNeed = Literal[
    "housing", "education", "job", "mentor", "income", "addiction_treatment",
    "mental_health_treatment", "social_network", "other",
]  # fmt: skip


class StrictModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, hide_input_in_errors=True, str_max_length=2000
    )


class Contact(StrictModel):
    name: Text
    role: Text | None = None
    email: Text | None = None
    phone: Text | None = None


class PartnerSubject(StrictModel):
    """The young person as the partner knows them; the CPR number is required to key them."""

    cpr: Cpr
    residence_kommunekode: MemberKommunekode
    name: Text | None = None


def _today(info: ValidationInfo) -> dt.date:
    """'Today' from the validation context (tests, replays), else the real date."""
    context = info.context if isinstance(info.context, Mapping) else {}
    today = context.get("today")
    return today if isinstance(today, dt.date) else dt.datetime.now(dt.UTC).date()


class PartnerEvent(StrictModel):
    """Fields every partner payload has; subclasses add their own and their own rules."""

    kind: ClassVar[str]
    schema_name: ClassVar[str]
    dated_fields: ClassVar[tuple[str, ...]] = ()

    event_id: UUID | None = None
    occurred_at: AwareDatetime
    subject: PartnerSubject

    @field_validator("occurred_at")
    @classmethod
    def _occurred_in_range(cls, value: dt.datetime, info: ValidationInfo) -> dt.datetime:
        if value.date() < EARLIEST_DATE:
            raise invalid("date_out_of_range", "must not be before 2000-01-01")
        today = _today(info)
        if value.astimezone(dt.UTC).date() > today + dt.timedelta(days=1):
            raise invalid("date_out_of_range", f"must not be in the future (today is {today})")
        return value

    @property
    def event_date(self) -> dt.date:
        return self.occurred_at.date()

    @property
    def age(self) -> int:
        """The young person's age on the event date."""
        return age_on(birth_date(self.subject.cpr), self.event_date)

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Self:
        if not MIN_AGE <= self.age <= MAX_AGE:
            raise invalid(
                "age_out_of_range",
                f"the young person must be {MIN_AGE}-{MAX_AGE} years old on the event date "
                f"{self.event_date}, but the CPR number gives age {self.age}",
                "subject.cpr",
            )
        latest = self.event_date + HORIZON
        for name in self.dated_fields:
            value = getattr(self, name)
            if value is not None and value > latest:
                raise invalid(
                    "date_out_of_range", "must not be more than 2 years after occurred_at", name
                )
        self.check_rules()
        return self

    def check_rules(self) -> None:
        """Kind-specific rules between fields; raise ``invalid(..., field)``."""

    def not_before(self, later: str, earlier: str) -> None:
        """Raise on ``later`` if it is before ``earlier`` (both field names; None skips)."""
        a, b = getattr(self, later), getattr(self, earlier)
        if a is not None and b is not None and a < b:
            raise invalid("date_order", f"must not be before {earlier}", later)

    def not_after_event(self, name: str, why: str) -> None:
        value = getattr(self, name)
        if value is not None and value > self.event_date:
            raise invalid("date_order", f"must not be after occurred_at: {why}", name)


def unique(values: list[str]) -> list[str]:
    seen = set()
    for value in values:
        if value in seen:
            raise invalid("duplicate", f"lists {value!r} twice")
        seen.add(value)
    return values


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """One ``{"field", "reason", "code"}`` per problem, field as a dotted path, no input values."""
    out = []
    for err in exc.errors(include_url=False, include_input=False, include_context=True):
        ctx = err.get("ctx") or {}
        loc = [str(part) for part in err["loc"]]
        if ctx.get("field"):
            loc.append(str(ctx["field"]))
        out.append(
            {"field": ".".join(loc) or "(payload)", "reason": _plain(err), "code": err["type"]}
        )
    return out


def _plain(err: Any) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a field of this payload (unknown fields are rejected)"
    if kind in ("literal_error", "enum"):
        return f"must be one of {ctx.get('expected', 'the listed values')}"
    if kind == "json_invalid":
        return "the payload is not valid JSON"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a JSON object"
    if kind == "timezone_aware":
        return "must be a date-time with a time zone, e.g. 2025-03-01T09:30:00+01:00"
    return str(err["msg"]).replace("Input should be", "must be", 1)


def validate_partner(
    model: type[PartnerEvent], payload: bytes | str | Mapping[str, Any], today: dt.date | None
) -> PartnerEvent:
    """Validate JSON (or its parsed form, judged as JSON) against one partner model."""
    text = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    context = {"today": today} if today is not None else None
    return model.model_validate_json(text, context=context)
