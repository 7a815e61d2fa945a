"""A sample day of synthetic partner traffic, sent the way partners send it.

Half of each kind goes to the HTTP API with the demo partners' bearer tokens, the other half
into the file drop as one JSON Lines export per partner and kind (written as ``.part``, then
renamed). Some of it is invalid on purpose. Afterwards, a municipality records consent for
some of the events the router holds, which releases them.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import tomllib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from deploy.local.stack import StackSettings
from deploy.local.summary import Decided
from deploy.local.watch import TopicWatcher
from schemas import generate_payloads, pseudonym

Payload = dict[str, Any]
INVALID_SHARE = 0.15
TOKENS_FILE = "demo-partner-tokens.toml"  # written beside the partners file by `connect http`


class TrafficError(RuntimeError):
    """The sample traffic could not be sent or was not processed; the message says why."""


@dataclass(frozen=True)
class SampleDay:
    seed: int
    http: list[tuple[str, Payload]]  # (kind, payload), in the order sent
    files: dict[str, list[Payload]]  # kind -> rows of its export

    @property
    def subjects(self) -> list[Payload]:
        payloads = [p for _kind, p in self.http]
        payloads += [p for rows in self.files.values() for p in rows]
        return [p["subject"] for p in payloads if isinstance(p.get("subject"), dict)]


def sample_day(seed: int, count: int, today: dt.date) -> SampleDay:
    """``count`` payloads dated up to ``today``; even ones over HTTP, odd ones as files."""
    batch = generate_payloads(
        seed=seed, count=count, invalid_share=INVALID_SHARE, reference_date=today
    )
    http: list[tuple[int, str, Payload]] = []
    files: dict[str, list[Payload]] = {}
    for kind, payloads in batch.payloads.items():
        for i, payload in enumerate(payloads):
            if i % 2 == 0:
                http.append((i, kind, payload))
            else:
                files.setdefault(kind, []).append(payload)
    http.sort(key=lambda item: item[0])  # the kinds interleaved, as a day's traffic is
    return SampleDay(seed, [(kind, p) for _i, kind, p in http], files)


@dataclass(frozen=True)
class DemoPartners:
    """Which demo partner sends which kind, and its bearer token."""

    partner_by_kind: dict[str, str]
    token_by_partner: dict[str, str]

    @classmethod
    def load(cls, settings: StackSettings) -> DemoPartners:
        if settings.partners_file is not None:
            raise TrafficError(
                "the sample traffic is sent as the demo partners, but UNGEBUS_PARTNERS_FILE "
                f"names another partners file ({settings.partners_file}); unset it"
            )
        partners_file = settings.resolved_partners_file()
        tokens_file = partners_file.with_name(TOKENS_FILE)
        try:
            partners = tomllib.loads(partners_file.read_text())["partner"]
            tokens = tomllib.loads(tokens_file.read_text())
        except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
            raise TrafficError(
                f"no demo partners in {partners_file} with tokens in {tokens_file} ({exc}); "
                "they are written when `ungebus connect http` first starts without them"
            ) from exc
        by_kind = {kind: p["name"] for p in partners for kind in p["kinds"]}
        return cls(by_kind, {str(k): str(v) for k, v in tokens.items()})

    def token(self, kind: str) -> str:
        return self.token_by_partner[self.partner_by_kind[kind]]


@dataclass
class Feeder:
    settings: StackSettings
    partners: DemoPartners
    watcher: TopicWatcher
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.settings.api_url, timeout=15.0)

    def close(self) -> None:
        self.client.close()

    def send_http(
        self, items: Iterable[tuple[str, Payload]], pace_s: float, stop: threading.Event
    ) -> int:
        """POST each payload as its kind's demo partner; the number accepted (202)."""
        accepted = 0
        for kind, payload in items:
            if stop.is_set():
                break
            status = self.post(kind, payload)
            if status == 202:
                accepted += 1
            else:
                with self.watcher.editing() as tally:
                    tally.rejected_http[status] += 1
            if pace_s:
                stop.wait(pace_s)  # a trickle, so the live summary moves
        return accepted

    def post(self, kind: str, payload: Payload) -> int:
        """The answer's status; a 503 or a dropped connection is retried (retries are safe)."""
        headers = {"Authorization": f"Bearer {self.partners.token(kind)}"}
        for attempt in range(3):
            try:
                response = self.client.post(f"/v1/events/{kind}", json=payload, headers=headers)
            except httpx.TransportError as exc:
                if attempt == 2:
                    raise TrafficError(f"the partner API did not answer: {exc}") from exc
            else:
                if response.status_code != 503 or attempt == 2:
                    return response.status_code
            time.sleep(1.0 + attempt)
        raise AssertionError("unreachable")

    def drop_files(self, files: dict[str, list[Payload]], name: str) -> list[Path]:
        """One export per kind in its partner's folder, complete before it is visible."""
        placed = []
        for kind, rows in files.items():
            folder = self.settings.drop_dir / self.partners.partner_by_kind[kind] / kind
            folder.mkdir(parents=True, exist_ok=True)
            final = folder / f"{name}.jsonl"
            part = final.with_name(final.name + ".part")
            part.write_text("".join(_json(row) + "\n" for row in rows), encoding="utf-8")
            part.rename(final)
            placed.append(final)
        return placed

    def count_file_rejects(self, placed: list[Path]) -> None:
        """Add the rejected rows of processed exports (their rejects files) to the tally."""
        rows = 0
        for path in placed:
            kind_dir = path.parent
            rejects = kind_dir.parent / "_rejects" / kind_dir.name
            for found in rejects.glob(f"*-{path.name}.rejects.jsonl"):
                rows += sum(1 for line in found.read_text().splitlines() if line.strip())
        with self.watcher.editing() as tally:
            tally.rejected_rows += rows

    def release_holds(self, held: dict[str, Decided], subjects: list[Payload]) -> set[str]:
        """Record the awaited consents for every other held event; the event ids released."""
        people = _by_pseudonym(subjects, self.settings.pseudonym_key())
        released = set()
        for event_id in sorted(held)[::2]:
            decided = held[event_id]
            subject = people.get(decided.pseudonym)
            if subject is None or not decided.awaiting:
                continue
            statuses = [
                self.post("consent_granted", consent_for(subject, a.purpose, a.unit, a.kommunekode))
                for a in decided.awaiting
            ]
            if all(status == 202 for status in statuses):
                released.add(event_id)
        return released


def consent_for(subject: Payload, purpose: str, unit: str, kommunekode: str) -> Payload:
    """The young person consents, today, to ``purpose`` for ``unit`` in ``kommunekode``."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at": now.isoformat(),
        "subject": subject,
        "consent_id": f"consent-{uuid.uuid4()}",
        "purpose": purpose,
        "recipient_unit": unit,
        "recipient_kommunekode": kommunekode,
        "given_by": "young_person",
        "valid_until": (now.date() + dt.timedelta(days=180)).isoformat(),
        "evidence_reference": f"DOK-DEMO-{uuid.uuid4().hex[:8]}",
    }


def _by_pseudonym(subjects: list[Payload], key: bytes) -> dict[str, Payload]:
    people = {}
    for subject in subjects:
        try:
            people[pseudonym(str(subject["cpr"]), key)] = subject
        except (KeyError, ValueError):  # an invalid CPR number on purpose: never accepted
            continue
    return people


def _json(payload: Payload) -> str:
    return json.dumps(payload, ensure_ascii=False)
