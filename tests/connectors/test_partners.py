"""The partners file: credentials bound to kinds and sources; mistakes named in plain words."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from bus.demo_partners import demo_partners, write_demo_partners
from bus.partners import PartnerConfigError, load_partners, parse_partners, token_sha256

HASH = token_sha256("token-a")


def entry(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "glostrup-gymnasium",
        "token_sha256": HASH,
        "kinds": ["dropout_notice"],
        "sources": ["institution:916101"],
    }
    return {**base, **fields}


def test_a_partner_is_bound_to_its_kinds_and_sources() -> None:
    registry = parse_partners({"partner": [entry()]})
    partner = registry.from_token("token-a")
    assert partner is not None and partner.name == "glostrup-gymnasium"
    assert partner.may_send("dropout_notice") and not partner.may_send("school_absence_signal")
    assert partner.may_claim("institution", "916101")
    assert not partner.may_claim("institution", "916102")
    assert not partner.may_claim("school", "916101")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"token_sha256": None}, "has no credential"),
        ({"kinds": ["prison_break"]}, "unknown event kind 'prison_break'"),
        ({"sources": ["916101"]}, "must be <kind>:<id>"),
        ({"token_sha256": "abc"}, "64 hex digits"),
        ({"kinds": ["release_planning_prison"]}, "has no prison:<id> source"),
        ({"name": "Has Spaces"}, "name"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_mistakes_in_the_partners_file_are_named(fields: dict[str, object], message: str) -> None:
    raw = {k: v for k, v in entry(**fields).items() if v is not None}
    with pytest.raises(PartnerConfigError, match=message):
        parse_partners({"partner": [raw]})


def test_two_partners_cannot_share_a_name_or_a_credential() -> None:
    with pytest.raises(PartnerConfigError, match="appears twice"):
        parse_partners({"partner": [entry(), entry(token_sha256=token_sha256("b"))]})
    with pytest.raises(PartnerConfigError, match="shares a credential"):
        parse_partners({"partner": [entry(), entry(name="other")]})


def test_a_missing_or_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PartnerConfigError, match="does not exist"):
        load_partners(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("[[partner]\n")
    with pytest.raises(PartnerConfigError, match="not valid TOML"):
        load_partners(tmp_path / "bad.toml")


def test_demo_partners_are_generated_with_private_tokens(tmp_path: Path) -> None:
    partners_file = tmp_path / "var" / "partners.toml"
    tokens_file = write_demo_partners(partners_file)
    registry = load_partners(partners_file)
    tokens = tomllib.loads(tokens_file.read_text())
    assert set(tokens) == {p.name for p in demo_partners()} == set(registry.by_name)
    for name, token in tokens.items():
        partner = registry.from_token(token)
        assert partner is not None and partner.name == name
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
    assert "ungebus-demo-" not in partners_file.read_text()  # only hashes in the config
