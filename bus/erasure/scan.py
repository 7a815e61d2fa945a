"""Where a person's plaintext could still be on disk: every file under the given folders read
byte by byte for their CPR number and the other texts given (names, free text), and Kafka's
segment files (``*.log``) besides read batch by batch with each compressed batch unpacked
(the producers compress with lz4, which could hide a match from a plain byte search).

A hit names the file and what was found ("CPR", "text 2"), never the bytes themselves.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cramjam

from schemas.cpr import digits

CHUNK = 1 << 20
MIN_NEEDLE = 4  # shorter texts would match everywhere
_BATCH_HEAD = struct.Struct(">qi")  # base offset, batch length
_BATCH_HEADER_BYTES = 61  # the v2 record batch's header, before its (maybe compressed) records
_ATTRIBUTES_AT = 21
_SEGMENT = re.compile(r"[0-9]{20}\.log")
# Kafka's offset and time indexes hold offsets and times, never a record's bytes, and are
# preallocated (10 MB each, mostly zeros): not worth reading.
_INDEX_SUFFIXES = (".index", ".timeindex")


@dataclass(frozen=True)
class Needle:
    label: str  # what a hit says was found; never the text itself
    data: bytes


@dataclass(frozen=True)
class Hit:
    path: Path
    label: str
    where: str  # "bytes" (a plain read) or "batch at N" (an unpacked Kafka batch)


@dataclass
class ScanReport:
    files: int = 0
    bytes: int = 0
    batches_unpacked: int = 0
    hits: list[Hit] = field(default_factory=list)


def needles(cpr: str | None, texts: Sequence[str]) -> list[Needle]:
    """What to look for: the CPR number as 10 digits and as DDMMYY-SSSS, and each text."""
    found: list[Needle] = []
    if cpr is not None:
        ten = digits(cpr)
        found += [Needle("CPR", ten.encode()), Needle("CPR", f"{ten[:6]}-{ten[6:]}".encode())]
    for n, text in enumerate(texts, 1):
        data = text.strip().encode()
        if len(data) < MIN_NEEDLE:
            raise ValueError(
                f"text {n} is shorter than {MIN_NEEDLE} bytes: it would match anywhere"
            )
        found.append(Needle(f"text {n}", data))
    return found


def scan(roots: Iterable[Path], wanted: Sequence[Needle], skip: Iterable[str] = ()) -> ScanReport:
    """Every file under ``roots`` (folders named in ``skip`` passed over) searched for
    ``wanted``."""
    report = ScanReport()
    skipped = set(skip)
    for path in _files(roots, skipped):
        report.files += 1
        for label in _in_bytes(path, wanted, report):
            report.hits.append(Hit(path, label, "bytes"))
        if _SEGMENT.fullmatch(path.name):
            report.hits += _in_batches(path, wanted, report)
    return report


def _files(roots: Iterable[Path], skipped: set[str]) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
            continue
        for path in sorted(root.rglob("*")):
            if (
                path.is_file()
                and path.suffix not in _INDEX_SUFFIXES
                and not skipped.intersection(path.relative_to(root).parts[:-1])
            ):
                yield path


def _in_bytes(path: Path, wanted: Sequence[Needle], report: ScanReport) -> set[str]:
    """Labels found in the file's raw bytes (read in chunks that overlap by a needle)."""
    overlap = max((len(n.data) for n in wanted), default=1) - 1
    found: set[str] = set()
    tail = b""
    try:
        with path.open("rb") as file:
            while chunk := file.read(CHUNK):
                report.bytes += len(chunk)
                window = tail + chunk
                found |= {n.label for n in wanted if n.data in window}
                tail = window[-overlap:] if overlap else b""
    except OSError:
        pass  # gone meanwhile (a segment deleted by the broker): nothing left to find
    return found


def _in_batches(path: Path, wanted: Sequence[Needle], report: ScanReport) -> list[Hit]:
    """Hits in a Kafka segment's compressed batches, each unpacked (one batch in memory at a
    time: a segment can be a gigabyte)."""
    hits: list[Hit] = []
    try:
        with path.open("rb") as file:
            while len(head := file.read(_BATCH_HEAD.size)) == _BATCH_HEAD.size:
                base_offset, length = _BATCH_HEAD.unpack(head)
                if length < _BATCH_HEADER_BYTES - _BATCH_HEAD.size:
                    break  # the segment's preallocated tail
                body = file.read(length)
                if len(body) < length:
                    break  # a batch being written
                codec = struct.unpack_from(">h", body, _ATTRIBUTES_AT - _BATCH_HEAD.size)[0] & 7
                if codec:
                    records = _unpacked(codec, body[_BATCH_HEADER_BYTES - _BATCH_HEAD.size :])
                    report.batches_unpacked += 1
                    hits += [
                        Hit(path, n.label, f"batch at offset {base_offset}")
                        for n in wanted
                        if n.data in records
                    ]
    except OSError:
        pass  # gone meanwhile (a segment deleted by the broker): nothing left to find
    return hits


def _unpacked(codec: int, payload: bytes) -> bytes:
    """A batch's records, decompressed; what cannot be (snappy's Kafka framing, damage) is
    searched as it is."""
    try:
        if codec == 1:
            return zlib.decompress(payload, 16 + zlib.MAX_WBITS)
        if codec == 3:
            return bytes(cramjam.lz4.decompress(payload))
        if codec == 4:
            return bytes(cramjam.zstd.decompress(payload))
    except (zlib.error, cramjam.DecompressionError, ValueError):
        pass
    return payload
