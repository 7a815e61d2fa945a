"""The policy file loads, and a broken one fails with every problem named."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from streams.routing.policy import DEFAULT_POLICY, PolicyError, load_policy, parse_policy

RAW = tomllib.loads(DEFAULT_POLICY.read_text())


def test_the_shipped_policy_covers_every_partner_event_kind() -> None:
    policy = load_policy()
    assert set(policy.rules_by_event) == {
        "dropout_notice",
        "release_planning",
        "handover",
        "school_absence_signal",
    }
    sources = {source for rule in policy.rules for source in rule.sources}
    assert sources == {
        "institution",
        "prison",
        "psychiatric_ward",
        "uu_centre",
        "municipality",
        "school",
    }


def test_every_problem_is_named_with_its_rule_and_field() -> None:
    raw = copy.deepcopy(RAW)
    raw["rules"][0]["unit"] = "mayor"
    raw["rules"][1]["fields"] = [*raw["rules"][1]["fields"], "favourite_colour"]
    raw["rules"][2]["basis"] = "gut_feeling"
    with pytest.raises(PolicyError) as caught:
        parse_policy(raw)
    message = str(caught.value)
    assert "3 problem(s)" in message
    assert "rule dropout.late_starter.unit: unknown unit 'mayor'" in message
    assert (
        "rule dropout.young_adult.fields: 'favourite_colour' is not a field of dropout_notice"
        in message
    )
    assert "rule prison.jobcentre.basis: 'gut_feeling' is missing" in message


def test_a_rule_without_a_basis_is_refused() -> None:
    raw = copy.deepcopy(RAW)
    del raw["rules"][0]["basis"]
    with pytest.raises(PolicyError, match=r"rule dropout.late_starter.basis: Field required"):
        parse_policy(raw)


def test_undefined_consent_purpose_is_refused() -> None:
    raw = copy.deepcopy(RAW)
    raw["rules"][0]["basis"] = "consent:everything"
    with pytest.raises(PolicyError, match="consent purpose 'everything' is not defined"):
        parse_policy(raw)


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "policy.toml"
    broken.write_text("version = ")
    with pytest.raises(PolicyError, match=str(broken)):
        load_policy(broken)
