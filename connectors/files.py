"""The file drop: partners' exports picked up from ``DIR/<partner>/<kind>/*.jsonl|*.csv``.

The folder names the partner (an entry in the partners file) and the event kind. A file is
read only when complete: partners write ``name.csv.part`` (or any other suffix) and rename it
into place; as a safety net a file is also left alone until it has been unchanged for
``file_settle_s`` seconds. Valid rows are published; rejected rows go to
``DIR/<partner>/_rejects/<kind>/`` with row number and reason; the file then moves to
``DIR/<partner>/_archive/<kind>/``, its name prefixed with its content hash. A file whose
content was processed before publishes nothing; event ids derive from each row's content,
so even a re-export under another name only repeats ids the router drops.

Each published row is sealed with its person's data key (``connectors.ingest.sealed``); a key
store that does not answer leaves the file in place for the next poll, as Kafka being down does.

Tracing: a span per file (partner, kind, row counts, rejected rows by row number and reason),
and each published row its own trace, linked to the file's span: one partner event, one trace.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from bus.crypto import Keyring
from bus.keystore import KeyStoreError
from bus.partners import PartnerRegistry
from bus.telemetry import EVENT_KIND, OUTCOME, PARTNER, SOURCE_KIND
from connectors.csv_rows import Row, csv_rows
from connectors.ingest import Outgoing, kind_not_allowed, prepare, sealed
from connectors.publisher import KafkaPublisher, PublishError
from connectors.settings import ConnectorSettings
from connectors.tracing import (
    CHANNEL,
    FIELD,
    REASON,
    accepted,
    reason_of,
    rejected,
    safe_field,
    tracer,
)
from schemas import PARTNER_KINDS

log = logging.getLogger("ungebus.connectors.files")

SUFFIXES = (".jsonl", ".csv")
ARCHIVE, REJECTS = "_archive", "_rejects"
MAX_ROW_EVENTS = 50  # rejected rows noted on a file's span; the rejects file has them all


@dataclass(frozen=True)
class DropFile:
    path: Path
    partner: str
    kind: str


@dataclass(frozen=True)
class FileReport:
    drop: DropFile
    published: int
    rejected: int
    archived_to: Path
    rejects_file: Path | None = None
    already_processed: bool = False

    def summary(self) -> str:
        where = f"{self.drop.partner}/{self.drop.kind}/{self.drop.path.name}"
        if self.already_processed:
            return f"{where}: processed before (same content), nothing published"
        text = f"{where}: {self.published} published, {self.rejected} rejected"
        return text + (f" (see {self.rejects_file})" if self.rejects_file else "")


def jsonl_rows(data: bytes, max_row_bytes: int) -> Iterator[Row]:
    number = 0
    for line, raw in enumerate(data.split(b"\n"), 1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        number += 1
        if len(raw) > max_row_bytes:
            reason = f"is {len(raw)} bytes, over the {max_row_bytes}-byte limit of one event"
            yield Row(number, line, None, {"field": "(row)", "reason": reason, "code": "too_large"})
        else:
            yield Row(number, line, raw)


def file_rows(path: Path, data: bytes, kind: str, max_row_bytes: int) -> Iterator[Row]:
    if path.suffix == ".jsonl":
        yield from jsonl_rows(data, max_row_bytes)
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"is not UTF-8 (byte {exc.start}); export the file as UTF-8"
        yield Row(0, 0, None, {"field": "(file)", "reason": reason, "code": "encoding"})
        return
    yield from csv_rows(text, kind)


class FileDrop:
    """One drop folder: scans it, and processes each complete file once."""

    def __init__(
        self,
        root: Path,
        settings: ConnectorSettings,
        partners: PartnerRegistry,
        publisher: KafkaPublisher,
        keyring: Keyring,
    ) -> None:
        self.root = root
        self.settings = settings
        self.partners = partners
        self.publisher = publisher
        self.keyring = keyring
        self.pseudonym_key = settings.pseudonym_key()
        self._warned: set[Path] = set()

    def _warn_once(self, path: Path, message: str) -> None:
        if path not in self._warned:
            self._warned.add(path)
            log.warning(message)

    def scan(self, now: float | None = None) -> tuple[list[DropFile], int]:
        """(files ready to read, number of files still settling)."""
        now = time.time() if now is None else now
        ready, settling = [], 0
        for partner_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if partner_dir.name.startswith((".", "_")):
                continue
            if self.partners.get(partner_dir.name) is None:
                self._warn_once(partner_dir, f"{partner_dir}: no partner of that name; skipped")
                continue
            for kind_dir in sorted(p for p in partner_dir.iterdir() if p.is_dir()):
                if kind_dir.name in (ARCHIVE, REJECTS) or kind_dir.name.startswith("."):
                    continue
                if kind_dir.name not in PARTNER_KINDS:
                    self._warn_once(kind_dir, f"{kind_dir}: not an event kind; skipped")
                    continue
                for path in sorted(kind_dir.iterdir()):
                    if not _is_export(path):
                        continue
                    if now - path.stat().st_mtime < self.settings.file_settle_s:
                        settling += 1
                        continue
                    ready.append(DropFile(path, partner_dir.name, kind_dir.name))
        return ready, settling

    def process(self, drop: DropFile) -> FileReport:
        """Publish a file's valid rows, write its rejects, archive it. PublishError leaves it."""
        attributes = {
            PARTNER: drop.partner,
            EVENT_KIND: drop.kind,
            CHANNEL: "file",
            "ungebus.file.format": drop.path.suffix.lstrip("."),
        }
        # The file's name is the partner's choice and may say anything: not on the span.
        with tracer.start_as_current_span(
            f"process file {drop.kind}",
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                report = self._process(drop, span)
            except PublishError as exc:
                span.set_attribute(OUTCOME, "publish_failed")
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            span.set_attributes(
                {
                    OUTCOME: "already_processed" if report.already_processed else "processed",
                    "ungebus.rows.published": report.published,
                    "ungebus.rows.rejected": report.rejected,
                }
            )
            return report

    def _process(self, drop: DropFile, span: trace.Span) -> FileReport:
        data = drop.path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()[:16]
        base = self.root / drop.partner
        archive_dir, rejects_dir = base / ARCHIVE / drop.kind, base / REJECTS / drop.kind
        archived = archive_dir / f"{digest}-{drop.path.name}"
        if archive_dir.is_dir() and any(archive_dir.glob(f"{digest}-*")):
            drop.path.unlink()
            return FileReport(drop, 0, 0, next(archive_dir.glob(f"{digest}-*")), None, True)
        outs, rejects = self._read(drop, data)
        if outs:
            try:
                outs = [sealed(out, self.keyring) for out in outs]
            except KeyStoreError as exc:
                raise PublishError(f"not sealed: {exc}") from None
            errors = self.publisher.publish_batch(
                outs, self.settings.ack_timeout_s * 2 + 5, link=span.get_span_context()
            )
            if errors:
                labels = {EVENT_KIND: drop.kind, PARTNER: drop.partner, CHANNEL: "file"}
                rejected.add(len(outs), {**labels, REASON: "kafka_unavailable"})
                raise PublishError(f"{len(errors)} records not stored: {errors[0]}")
            for out in outs:
                labels = {EVENT_KIND: drop.kind, PARTNER: drop.partner, CHANNEL: "file"}
                accepted.add(1, {**labels, SOURCE_KIND: out.source_kind})
        _note_rejects(span, drop, rejects)
        rejects_file = None
        if rejects:
            rejects_file = rejects_dir / f"{digest}-{drop.path.name}.rejects.jsonl"
            _write_atomically(rejects_file, "".join(json.dumps(r) + "\n" for r in rejects))
        archive_dir.mkdir(parents=True, exist_ok=True)
        os.replace(drop.path, archived)
        return FileReport(drop, len(outs), len(rejects), archived, rejects_file)

    def _read(self, drop: DropFile, data: bytes) -> tuple[list[Outgoing], list[dict[str, object]]]:
        partner = self.partners.get(drop.partner)
        assert partner is not None  # scan() passes only known partners
        name = drop.path.name
        if not partner.may_send(drop.kind):
            return [], [{"file": name, "row": 0, "line": 0,
                         "errors": [kind_not_allowed(partner, drop.kind)]}]  # fmt: skip
        if len(data) > self.settings.max_file_bytes:
            reason = f"is {len(data)} bytes, over the {self.settings.max_file_bytes}-byte limit"
            error = {"field": "(file)", "reason": reason, "code": "too_large"}
            return [], [{"file": name, "row": 0, "line": 0, "errors": [error]}]
        outs: dict[str, Outgoing] = {}
        rejects: list[dict[str, object]] = []
        for row in file_rows(drop.path, data, drop.kind, self.settings.max_body_bytes):
            if row.payload is None:
                errors = [row.error] if row.error else []
                rejects.append({"file": name, "row": row.row, "line": row.line, "errors": errors})
                continue
            result = prepare(
                partner,
                drop.kind,
                row.payload,
                pseudonym_key=self.pseudonym_key,
                topics=self.settings.topics,
            )
            if isinstance(result, Outgoing):
                outs.setdefault(result.event_id, result)  # a row repeated in the file: once
            else:
                rejects.append(
                    {"file": name, "row": row.row, "line": row.line, "errors": result.errors}
                )
        return list(outs.values()), rejects

    def poll(self, echo: Callable[[str], None] = log.info) -> tuple[int, int]:
        """Process every ready file once; return (files failed to publish, files settling)."""
        ready, settling = self.scan()
        failed = 0
        for drop in ready:
            try:
                echo(self.process(drop).summary())
            except PublishError as exc:
                failed += 1
                echo(f"{drop.path}: left in place, will be retried: {exc}")
        return failed, settling

    def run(
        self, *, once: bool, stop: threading.Event, echo: Callable[[str], None] = log.info
    ) -> int:
        """Poll until ``stop``; with ``once``, until nothing is left to read. Files failed."""
        failed_total = 0
        while not stop.is_set():
            failed, settling = self.poll(echo)
            failed_total += failed
            if once and not settling:
                break
            wait = self.settings.file_settle_s if once else self.settings.file_poll_interval_s
            stop.wait(max(wait, 0.05))
        return failed_total


def _note_rejects(span: trace.Span, drop: DropFile, rejects: list[dict[str, object]]) -> None:
    """Count each rejected row, and note it on the file's span by row number and reason."""
    for number, reject in enumerate(rejects):
        errors = reject.get("errors")
        first = errors[0] if isinstance(errors, list) and errors else {}
        reason = reason_of(str(first.get("code", "")))
        labels = {EVENT_KIND: drop.kind, PARTNER: drop.partner, CHANNEL: "file", REASON: reason}
        rejected.add(1, labels)
        if number < MAX_ROW_EVENTS:
            span.add_event(
                "row rejected",
                {
                    "ungebus.row": int(str(reject.get("row", 0))),
                    REASON: reason,
                    FIELD: safe_field(str(first.get("field", ""))),
                },
            )


def _is_export(path: Path) -> bool:
    """A complete export by name: ``*.jsonl`` or ``*.csv``, not hidden (``.part`` is not)."""
    return path.suffix in SUFFIXES and not path.name.startswith(".") and path.is_file()


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
