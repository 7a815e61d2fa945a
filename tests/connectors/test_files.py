"""The file drop against the real broker: exports in, exact records out, rejects explained."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bus.partners import load_partners
from bus.topics import ensure_topics
from connectors.files import FileDrop
from connectors.ingest import connector_topics
from connectors.publisher import KafkaPublisher
from schemas import pseudonym
from tests.support import sealed
from tests.support.connectors_harness import check_record, connector_settings, read_all
from tests.support.partner_payloads import partner_name, payloads, to_csv, write_partners

pytestmark = pytest.mark.integration


def jsonl(items: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(item) + "\n" for item in items)


def inbox(root: Path, kind: str) -> Path:
    folder = root / partner_name(kind) / kind
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def drop(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> Iterator[Callable[..., FileDrop]]:
    """FileDrop factory over ``tmp_path/drop`` with its own topics and publisher."""
    publishers: list[KafkaPublisher] = []
    settings = connector_settings(kafka_bootstrap, unique("t"), tmp_path, file_settle_s=0)
    ensure_topics(settings.kafka_config(), connector_topics(settings.topics))

    def make(**overrides: Any) -> FileDrop:
        effective = settings.model_copy(update=overrides)
        publishers.append(KafkaPublisher(effective.connector_producer_config()))
        registry = load_partners(tmp_path / "partners.toml")
        return FileDrop(
            tmp_path / "drop", effective, registry, publishers[-1], sealed.keyring(effective)
        )

    (tmp_path / "drop").mkdir()
    yield make
    for publisher in publishers:
        publisher.close(5)


def test_every_kind_dropped_as_jsonl_and_csv_is_the_exact_record_on_its_topic(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    settings = connector_settings(kafka_bootstrap, unique("t"), tmp_path, file_settle_s=0)
    by_kind = payloads(seed=31, per_kind=2)
    write_partners(tmp_path / "partners.toml", by_kind)
    root = tmp_path / "drop"
    for kind, (first, second) in by_kind.items():
        (inbox(root, kind) / "export-1.jsonl").write_text(jsonl([first]))
        (inbox(root, kind) / "export-2.csv").write_text(to_csv([second]))
    env = {
        **os.environ,
        "UNGEBUS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "UNGEBUS_TOPIC_PREFIX": settings.topic_prefix,
        "UNGEBUS_VAR_DIR": str(tmp_path),
        "UNGEBUS_PARTNERS_FILE": str(tmp_path / "partners.toml"),
        "UNGEBUS_FILE_SETTLE_S": "0",
    }
    command = [sys.executable, "-m", "bus", "connect", "files", str(root), "--once"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": 1 published, 0 rejected") == 2 * len(by_kind)

    key = settings.pseudonym_key()
    sent = {
        pseudonym(p["subject"]["cpr"], key): (kind, p) for kind, ps in by_kind.items() for p in ps
    }
    messages = read_all(settings)
    assert sorted(m.key().decode() for m in messages) == sorted(sent)
    for message in messages:
        check_record(message, *sent[message.key().decode()], settings)
    for kind in by_kind:
        assert not list(inbox(root, kind).iterdir()), "processed files leave the inbox"
        archived = list((root / partner_name(kind) / "_archive" / kind).iterdir())
        assert sorted(p.name.split("-", 1)[1] for p in archived) == [
            "export-1.jsonl",
            "export-2.csv",
        ]
        assert not (root / partner_name(kind) / "_rejects").exists()

    # The same content dropped again, under another name: nothing new is published.
    kind = "dropout_notice"
    for archived in (root / partner_name(kind) / "_archive" / kind).iterdir():
        shutil.copy(archived, inbox(root, kind) / f"again-{archived.name.split('-', 1)[1]}")
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("processed before (same content), nothing published") == 2
    assert len(read_all(settings)) == len(messages)


def test_rejected_rows_are_written_with_row_and_reason_and_valid_rows_published(
    drop: Callable[..., FileDrop], tmp_path: Path
) -> None:
    by_kind = payloads(seed=41, per_kind=4)
    write_partners(tmp_path / "partners.toml", by_kind)
    rows = by_kind["dropout_notice"]
    bad_cpr = "3102091234"
    invalid = rows[1] | {"subject": rows[1]["subject"] | {"cpr": bad_cpr}}
    foreign = rows[2] | {"institution_number": "999999"}
    text = to_csv([rows[0], invalid, foreign, rows[3]]).splitlines(keepends=True)
    text.insert(2, "only,three,cells\r\n")  # a malformed row, second data row
    folder = inbox(tmp_path / "drop", "dropout_notice")
    (folder / "week-47.csv").write_text("".join(text))
    (folder / "week-48.jsonl").write_text(jsonl([rows[0]]) + "{not json\n")

    file_drop = drop()
    assert file_drop.poll() == (0, 0)

    published = read_all(file_drop.settings)
    key = file_drop.settings.pseudonym_key()
    assert Counter(m.key().decode() for m in published) == {
        pseudonym(rows[0]["subject"]["cpr"], key): 2,  # in both files: one event id, twice
        pseudonym(rows[3]["subject"]["cpr"], key): 1,
    }
    assert len({dict(m.headers())["ce_id"] for m in published}) == 2
    rejects_dir = tmp_path / "drop" / partner_name("dropout_notice") / "_rejects" / "dropout_notice"
    csv_rejects = [
        json.loads(line) for line in next(rejects_dir.glob("*-week-47.csv.rejects.jsonl")).open()
    ]
    assert [(r["row"], r["line"], [e["field"] for e in r["errors"]]) for r in csv_rejects] == [
        (2, 3, ["(row)"]),
        (3, 4, ["subject.cpr"]),
        (4, 5, ["institution_number"]),
    ]
    assert csv_rejects[0]["errors"][0]["reason"].startswith("has 3 cells; the header has")
    (jsonl_reject,) = [
        json.loads(line) for line in next(rejects_dir.glob("*-week-48.jsonl.rejects.jsonl")).open()
    ]
    assert (jsonl_reject["row"], jsonl_reject["line"]) == (2, 2)
    assert jsonl_reject["errors"][0]["reason"] == "the payload is not valid JSON"
    all_rejects = "".join(p.read_text() for p in rejects_dir.iterdir())
    assert bad_cpr not in all_rejects and bad_cpr[:6] not in all_rejects
    assert not list(folder.iterdir())


def test_half_written_files_are_left_until_complete(
    drop: Callable[..., FileDrop], tmp_path: Path
) -> None:
    by_kind = payloads(seed=51, per_kind=2)
    write_partners(tmp_path / "partners.toml", by_kind)
    first, second = by_kind["handover_uu"]
    folder = inbox(tmp_path / "drop", "handover_uu")
    part = folder / "today.jsonl.part"
    part.write_text(jsonl([first]) + '{"occurred_at": "2026-')  # still being written
    growing = folder / "growing.csv"
    growing.write_text(to_csv([second]))

    waiting = drop(file_settle_s=30)
    assert waiting.poll() == (0, 1), "a file changed just now is not read yet"
    assert part.exists() and growing.exists()

    old = growing.stat().st_mtime - 60
    os.utime(growing, (old, old))
    assert waiting.poll() == (0, 0)
    assert not growing.exists()
    part.write_text(jsonl([first]))  # the writer finished ...
    os.utime(part, (old, old))
    assert waiting.poll() == (0, 0) and part.exists(), ".part files are never read"
    part.rename(folder / "today.jsonl")  # ... and renamed it into place
    assert waiting.poll() == (0, 0)
    key = waiting.settings.pseudonym_key()
    assert sorted(m.key().decode() for m in read_all(waiting.settings)) == sorted(
        pseudonym(p["subject"]["cpr"], key) for p in (first, second)
    )


def test_a_kind_the_partner_may_not_send_is_rejected_whole(
    drop: Callable[..., FileDrop], tmp_path: Path
) -> None:
    by_kind = payloads(seed=61, per_kind=1)
    write_partners(tmp_path / "partners.toml", by_kind)
    school = tmp_path / "drop" / partner_name("school_absence_signal")
    (school / "release_planning_prison").mkdir(parents=True)
    export = school / "release_planning_prison" / "x.jsonl"
    export.write_text(jsonl(by_kind["release_planning_prison"]))
    (tmp_path / "drop" / "stranger" / "dropout_notice").mkdir(parents=True)
    stranger = tmp_path / "drop" / "stranger" / "dropout_notice" / "y.jsonl"
    stranger.write_text(jsonl(by_kind["dropout_notice"]))

    file_drop = drop()
    assert file_drop.poll() == (0, 0)
    assert read_all(file_drop.settings) == []
    (rejects,) = (school / "_rejects" / "release_planning_prison").iterdir()
    assert json.loads(rejects.read_text())["errors"][0]["code"] == "kind_not_allowed"
    assert stranger.exists(), "a folder of no configured partner is left alone"
