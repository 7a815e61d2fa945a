"""One edge model per partner kind, with the rules a caseworker would expect to hold.

Field names are the partner's words (a prison sends ``expected_release_on``, a ward
``expected_discharge_on``); ``schemas.mapping`` turns both into the one release planning record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field

from schemas.edge import (
    ConsentGiverName,
    Contact,
    DanishKommunekode,
    Identifier,
    InstitutionNumber,
    LongText,
    MemberKommunekode,
    PartnerDate,
    PartnerEvent,
    Purpose,
    ReleaseNeed,
    StrictModel,
    Text,
    UnitName,
    invalid,
    unique,
    validate_partner,
)

Needs = Annotated[list[ReleaseNeed], AfterValidator(unique), Field(max_length=9)]


class DropoutNoticeIn(PartnerEvent):
    """A gymnasium, EUD or FGU institution: a student dropped out or is at risk of it."""

    kind: ClassVar[str] = "dropout_notice"
    schema_name: ClassVar[str] = "dropout_notice"
    dated_fields: ClassVar[tuple[str, ...]] = ("enrolled_on", "left_on")

    institution_number: InstitutionNumber
    institution_name: Text
    status: Literal["dropped_out", "at_risk"]
    level: Literal["gymnasium", "eud", "fgu"]
    programme: Text
    enrolled_on: PartnerDate
    left_on: PartnerDate | None = None
    reason_category: Literal[
        "wrong_choice", "academic", "absence", "personal", "health", "social", "financial",
        "moved", "other", "unknown",
    ] = "unknown"  # fmt: skip
    institution_contact: Contact | None = None

    def check_rules(self) -> None:
        self.not_after_event("enrolled_on", "the student was enrolled when the notice was made")
        if self.status == "dropped_out" and self.left_on is None:
            raise invalid(
                "required_for_status", "is required when status is dropped_out", "left_on"
            )
        if self.status == "at_risk" and self.left_on is not None:
            raise invalid(
                "unexpected", "must be empty when status is at_risk (still enrolled)", "left_on"
            )
        self.not_before("left_on", "enrolled_on")


class PrisonSensitive(StrictModel):
    """Criminal-offence data: only what the release plan needs."""

    criminal_record_summary: LongText | None = None
    substance_use: bool | None = None
    notes: LongText | None = None


class PsychiatrySensitive(StrictModel):
    """Health data: only what the discharge plan needs."""

    health_summary: LongText | None = None
    substance_use: bool | None = None
    notes: LongText | None = None


class ReleasePlanningPrisonIn(PartnerEvent):
    """A Kriminalforsorgen institution has started planning a young person's release."""

    kind: ClassVar[str] = "release_planning_prison"
    schema_name: ClassVar[str] = "release_planning"
    dated_fields: ClassVar[tuple[str, ...]] = ("expected_release_on", "parole_decision_on")

    prison_id: Identifier
    prison_name: Text
    planning_started_on: PartnerDate
    expected_release_on: PartnerDate
    parole_decision_on: PartnerDate | None = None
    needs: Needs = Field(default_factory=list)
    coordinator: Contact | None = None
    sensitive: PrisonSensitive | None = None

    def check_rules(self) -> None:
        self.not_after_event("planning_started_on", "planning has started")
        self.not_before("expected_release_on", "planning_started_on")
        if self.parole_decision_on and self.parole_decision_on > self.expected_release_on:
            raise invalid(
                "date_order", "must not be after expected_release_on", "parole_decision_on"
            )


class ReleasePlanningPsychiatryIn(PartnerEvent):
    """A psychiatric ward has started planning a young person's discharge."""

    kind: ClassVar[str] = "release_planning_psychiatry"
    schema_name: ClassVar[str] = "release_planning"
    dated_fields: ClassVar[tuple[str, ...]] = ("expected_discharge_on",)

    ward_id: Identifier
    ward_name: Text
    planning_started_on: PartnerDate
    expected_discharge_on: PartnerDate
    needs: Needs = Field(default_factory=list)
    coordinator: Contact | None = None
    sensitive: PsychiatrySensitive | None = None

    def check_rules(self) -> None:
        self.not_after_event("planning_started_on", "planning has started")
        self.not_before("expected_discharge_on", "planning_started_on")


class ActiveMeasureIn(StrictModel):
    kind: Literal[
        "mentor", "contact_person", "youth_plan", "education_plan", "family_support", "other"
    ]
    description: Text | None = None
    ends_on: PartnerDate | None = None


Measures = Annotated[list[ActiveMeasureIn], Field(max_length=20)]


class HandoverUuIn(PartnerEvent):
    """UU (youth guidance) hands a young person over to the residence municipality's youth unit."""

    kind: ClassVar[str] = "handover_uu"
    schema_name: ClassVar[str] = "handover"
    dated_fields: ClassVar[tuple[str, ...]] = ("hand_over_by",)

    uu_centre_id: Identifier
    uu_centre_name: Text
    reason: Literal[
        "left_compulsory_school", "not_in_education_or_job", "dropped_out", "end_of_guidance",
        "turned_18", "other",
    ]  # fmt: skip
    active_measures: Measures = Field(default_factory=list)
    hand_over_by: PartnerDate
    case_reference: Text | None = None
    sender_contact: Contact | None = None

    def check_rules(self) -> None:
        if self.hand_over_by < self.event_date:
            raise invalid("date_order", "must not be before occurred_at", "hand_over_by")


class HandoverMunicipalityIn(PartnerEvent):
    """The municipality a young person moved from hands them over to the new one."""

    kind: ClassVar[str] = "handover_municipality"
    schema_name: ClassVar[str] = "handover"
    dated_fields: ClassVar[tuple[str, ...]] = ("hand_over_by",)

    from_kommunekode: DanishKommunekode
    to_kommunekode: MemberKommunekode
    reason: Literal["relocation", "other"] = "relocation"
    active_measures: Measures = Field(default_factory=list)
    hand_over_by: PartnerDate
    case_reference: Text | None = None
    sender_contact: Contact | None = None

    def check_rules(self) -> None:
        if self.from_kommunekode == self.to_kommunekode:
            raise invalid(
                "same_municipality", "must differ from to_kommunekode", "from_kommunekode"
            )
        if self.hand_over_by < self.event_date:
            raise invalid("date_order", "must not be before occurred_at", "hand_over_by")


class SchoolAbsenceSignalIn(PartnerEvent):
    """A municipal school or 10th grade: unlawful absence crossed 10 % or 15 % in a period."""

    kind: ClassVar[str] = "school_absence_signal"
    schema_name: ClassVar[str] = "school_absence_signal"

    institution_number: InstitutionNumber
    school_name: Text
    grade: int = Field(ge=0, le=10)
    period_start: PartnerDate
    period_end: PartnerDate
    unlawful_absence_percent: float = Field(ge=0, le=100)
    threshold_crossed_percent: Literal[10, 15]

    def check_rules(self) -> None:
        self.not_before("period_end", "period_start")
        self.not_after_event("period_end", "absence is measured over a past period")
        if self.unlawful_absence_percent < self.threshold_crossed_percent:
            raise invalid(
                "threshold_not_crossed",
                "is above unlawful_absence_percent, so it was not crossed",
                "threshold_crossed_percent",
            )


class ConsentGrantedIn(PartnerEvent):
    """Consent recorded by a municipality for a named unit, purpose and period."""

    kind: ClassVar[str] = "consent_granted"
    schema_name: ClassVar[str] = "consent_granted"
    dated_fields: ClassVar[tuple[str, ...]] = ("valid_until",)

    consent_id: Identifier
    purpose: Purpose
    recipient_unit: UnitName
    recipient_kommunekode: MemberKommunekode
    given_by: ConsentGiverName
    valid_until: PartnerDate
    evidence_reference: Text

    def check_rules(self) -> None:
        if self.given_by == "custodial_parent" and self.age >= 18:
            raise invalid(
                "consent_giver",
                "a custodial parent can consent only for a young person under 18",
                "given_by",
            )
        if self.valid_until < self.event_date:
            raise invalid("date_order", "must not be before occurred_at", "valid_until")


class ConsentWithdrawnIn(PartnerEvent):
    """A consent withdrawn: routing that relies on it stops at once."""

    kind: ClassVar[str] = "consent_withdrawn"
    schema_name: ClassVar[str] = "consent_withdrawn"

    consent_id: Identifier
    purpose: Purpose
    recipient_unit: UnitName
    recipient_kommunekode: MemberKommunekode
    withdrawn_by: ConsentGiverName
    evidence_reference: Text | None = None


PARTNER_MODELS: Mapping[str, type[PartnerEvent]] = {
    model.kind: model
    for model in (
        DropoutNoticeIn,
        ReleasePlanningPrisonIn,
        ReleasePlanningPsychiatryIn,
        HandoverUuIn,
        HandoverMunicipalityIn,
        SchoolAbsenceSignalIn,
        ConsentGrantedIn,
        ConsentWithdrawnIn,
    )
}


def parse_partner(
    kind: str, payload: bytes | str | Mapping[str, Any], *, today: dt.date | None = None
) -> PartnerEvent:
    """Validate a partner payload of ``kind``; pydantic ValidationError (see field_errors)."""
    try:
        model = PARTNER_MODELS[kind]
    except KeyError:
        raise KeyError(
            f"unknown partner kind {kind!r}; known: {', '.join(PARTNER_MODELS)}"
        ) from None
    return validate_partner(model, payload, today)
