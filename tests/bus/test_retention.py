"""The retention table (``streams/retention.toml``): every topic in exactly one data class, the
catalogue's retention taken from it, and a bad entry refused with its field and reason."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bus.cli import cli
from bus.demo_partners import demo_partners
from bus.retention import (
    DAY_MS,
    DEFAULT_RETENTION,
    RetentionError,
    load_retention,
    markdown_table,
    parse_retention,
    parse_table,
)
from bus.topics import KEYS_TOPIC_CONFIG, Topics

PREFIX = "t."


def _all_topics(topics: Topics) -> list[str]:
    partners = [p.name for p in demo_partners()]
    return [s.name for s in [*topics.catalogue(), *topics.partner_catalogue(partners)]]


def test_every_topic_of_the_catalogue_is_in_exactly_one_data_class() -> None:
    table = load_retention()
    topics = Topics(PREFIX)
    for name in _all_topics(topics):
        bare = name.removeprefix(PREFIX)
        covering = [c.name for c in table.classes if c.covers(bare)]
        assert len(covering) == 1, f"{bare} is in {covering}"


def test_every_topic_the_table_names_is_a_topic_of_the_bus() -> None:
    table = load_retention()
    names = [n.removeprefix(PREFIX) for n in _all_topics(Topics(PREFIX))]
    for data_class in table.classes:
        for pattern in data_class.topics:
            assert any(data_class.covers(n) for n in names), f"{pattern}: no such topic"


def test_the_classes_a_dpo_asks_about_are_all_there_with_a_reason() -> None:
    table = load_retention()
    for name in (
        "inbound events", "tasks", "escalations", "take-overs", "handover status",
        "routing decisions", "dead letters", "consents", "operator actions", "data keys",
    ):  # fmt: skip
        data_class = table.data_class(name)
        assert len(data_class.reason) > 40, name


def test_each_topic_keeps_records_as_long_as_its_data_class_says() -> None:
    table = load_retention()
    topics = Topics(PREFIX)
    specs = {s.name: s for s in topics.catalogue()}
    assert specs["t.inbound.events"].config["retention.ms"] == str(365 * DAY_MS)
    assert specs["t.audit.routing"].config["retention.ms"] == str(1825 * DAY_MS)
    assert specs["t.deadletter"].config["retention.ms"] == str(90 * DAY_MS)
    assert specs["t.tasks.161.youth_unit"].config["retention.ms"] == str(
        table.data_class("tasks").retention_ms
    )
    assert specs["t.keys"].config == KEYS_TOPIC_CONFIG  # compacted, no time limit
    (partner,) = topics.partner_catalogue(["school"])
    assert partner.config["retention.ms"] == str(7 * DAY_MS)


def test_a_changed_table_changes_the_catalogue(tmp_path: Path) -> None:
    document = tomllib.loads(DEFAULT_RETENTION.read_text(encoding="utf-8"))
    for entry in document["class"]:
        if entry["name"] == "dead letters":
            entry["retention"] = "P30D"
    specs = {s.name: s for s in Topics().catalogue(parse_table(document))}
    assert specs["deadletter"].config["retention.ms"] == str(30 * DAY_MS)


def test_a_topic_in_no_class_is_refused_by_name() -> None:
    document = tomllib.loads(DEFAULT_RETENTION.read_text(encoding="utf-8"))
    document["class"] = [e for e in document["class"] if e["name"] != "dead letters"]
    with pytest.raises(RetentionError, match="topic 'deadletter' is in no data class"):
        Topics().catalogue(parse_table(document))


def test_only_the_keys_may_be_kept_until_erased() -> None:
    document = tomllib.loads(DEFAULT_RETENTION.read_text(encoding="utf-8"))
    for entry in document["class"]:
        if entry["name"] == "operator actions":
            entry["retention"] = "until erased"
    with pytest.raises(RetentionError, match="'operations' is in class 'operator actions'"):
        Topics().catalogue(parse_table(document))


@pytest.mark.parametrize(
    ("value", "days"), [("P365D", 365), ("P1825D", 1825), ("P7D", 7), ("until erased", None)]
)
def test_kle_days_notation(value: str, days: int | None) -> None:
    assert parse_retention(value) == days


def _entry(**fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "dead letters", "retention": "P90D", "reason": "an operator looks within days",
        "topics": ["deadletter"], "stores": [],
    }  # fmt: skip
    entry.update(fields)
    return {k: v for k, v in entry.items() if v is not None}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_entry(retention="P1Y"), "retention: 'P1Y' is not a retention in days in KLE notation"),
        (_entry(retention="365"), "retention: '365' is not a retention in days"),
        (_entry(retention="P0D"), "retention: 'P0D' is not"),
        (_entry(reason=" "), "reason: empty"),
        (_entry(reason=None), "reason: missing"),
        (_entry(topics="deadletter"), "topics: must be a list of strings"),
        (_entry(stores=[""]), "stores: must be a list of non-empty strings"),
        (_entry(topics=["dead letter"]), "topics: 'dead letter' is not a topic name"),
        (_entry(kept="forever"), "kept: unknown field"),
    ],
)
def test_a_bad_entry_is_refused_with_its_field_and_reason(
    entry: dict[str, Any], message: str
) -> None:
    with pytest.raises(RetentionError, match=f"class 1 \\('dead letters'\\): {message}"):
        parse_table({"class": [entry]}, "retention.toml")


def test_every_bad_entry_is_named_at_once() -> None:
    document = {"class": [_entry(retention="1 year"), _entry(name="x", reason="")]}
    with pytest.raises(RetentionError) as raised:
        parse_table(document)
    assert "class 1 ('dead letters'): retention" in str(raised.value)
    assert "class 2 ('x'): reason: empty" in str(raised.value)


def test_a_class_or_topic_twice_is_refused() -> None:
    with pytest.raises(RetentionError, match="class 'dead letters': name: used more than once"):
        parse_table({"class": [_entry(), _entry(topics=["operations"])]})
    with pytest.raises(RetentionError, match="topic 'deadletter': listed in more than one"):
        parse_table({"class": [_entry(), _entry(name="other")]})


def test_a_file_that_is_not_toml_or_not_there_says_so(tmp_path: Path) -> None:
    broken = tmp_path / "retention.toml"
    broken.write_text("[[class]\nname = ", encoding="utf-8")
    with pytest.raises(RetentionError, match=r"retention\.toml: not valid TOML"):
        load_retention(broken)
    with pytest.raises(RetentionError, match="cannot read the retention table"):
        load_retention(tmp_path / "missing.toml")
    with pytest.raises(RetentionError, match=r"unknown top-level key\(s\) \['policy'\]"):
        parse_table({"policy": {}, "class": [_entry()]})


def test_the_readme_shows_the_table_as_it_is() -> None:
    """The README's retention table is the one in streams/retention.toml (regenerate it with
    `ungebus topics retention`)."""
    readme = (DEFAULT_RETENTION.parent.parent / "README.md").read_text(encoding="utf-8")
    assert markdown_table(load_retention()) in readme


def test_topics_list_names_each_topics_class_and_retention_prints_the_table(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UNGEBUS_TOPIC_PREFIX", PREFIX)
    listed = CliRunner().invoke(cli, ["topics", "list"])
    assert listed.exit_code == 0, listed.output
    lines = {line.split("\t")[0]: line for line in listed.output.splitlines()}
    assert lines["t.deadletter"].endswith(f"retention.ms={90 * DAY_MS}\tP90D (dead letters)")
    assert lines["t.keys"].endswith("retention.ms=default\tuntil erased (data keys)")
    printed = CliRunner().invoke(cli, ["topics", "retention"])
    assert printed.exit_code == 0 and printed.output == markdown_table(load_retention())
