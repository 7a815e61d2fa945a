"""The erasure check's search (``bus.erasure.scan``): plaintext in plain files and inside
Kafka's compressed record batches is found and named, never printed."""

from __future__ import annotations

import struct
from pathlib import Path

import cramjam
import pytest

from bus.erasure.scan import Needle, needles, scan

CPR = "010104-1234"  # synthetic
NAME = "Testa Testesen"


def _segment(records: bytes, codec: int) -> bytes:
    """One Kafka v2 record batch around ``records`` (compressed with ``codec``), as it lies in
    a segment file; the fields the search does not read are zero."""
    payload = {0: records, 3: bytes(cramjam.lz4.compress(records))}[codec]
    header_rest = struct.pack(">iBIhiqqqhii", 0, 2, 0, codec, 0, 0, 0, -1, -1, -1, 1)
    body = header_rest + payload
    return struct.pack(">qi", 42, len(body)) + body


def test_a_cpr_number_and_a_name_are_found_in_plain_bytes_in_either_spelling(
    tmp_path: Path,
) -> None:
    (tmp_path / "inbox.db-wal").write_bytes(b"\x00junk0101041234junk\x00")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "spans.jsonl").write_text(f'{{"name": "{NAME}"}}')
    (tmp_path / "clean").write_bytes(b"nothing personal" * 1000)

    report = scan([tmp_path], needles(CPR, [NAME]))

    assert report.files == 3
    assert {(h.path.name, h.label) for h in report.hits} == {
        ("inbox.db-wal", "CPR"),
        ("spans.jsonl", "text 1"),
    }


def test_a_name_inside_an_lz4_batch_of_a_segment_is_found_once_unpacked(tmp_path: Path) -> None:
    # Repeated, the name compresses to a back-reference: the raw bytes no longer hold it.
    records = (NAME.encode() + b"|") * 50
    segment = tmp_path / "inbound.events-0" / "00000000000000000000.log"
    segment.parent.mkdir()
    segment.write_bytes(_segment(records, 3) + b"\x00" * 64)
    wanted = [Needle("name repeated", ((NAME + "|") * 3).encode())]

    report = scan([tmp_path], wanted)

    assert report.batches_unpacked == 1
    assert [(h.label, h.where) for h in report.hits] == [("name repeated", "batch at offset 42")]


def test_a_text_too_short_to_mean_anything_is_refused_and_a_cpr_is_looked_for_both_ways() -> None:
    with pytest.raises(ValueError, match="text 1 is shorter"):
        needles(None, ["Bo"])
    assert [n.label for n in needles(CPR, [])] == ["CPR", "CPR"]


def test_a_skipped_folder_is_not_searched(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "kafka.jar").write_bytes(b"0101041234")
    assert scan([tmp_path], needles(CPR, []), skip=("lib",)).hits == []
