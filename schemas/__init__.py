"""The contracts of ungebus: Avro schemas, pinned ids, the wire codec, partner edge models.

Imports nothing of ours. What other components use:

- codec: ``encode(name, record) -> bytes`` (newest version), ``decode(data) -> Decoded``
  (name, version written, record read into the newest version); ``DecodeError`` for every
  kind of bad input;
- catalogue: ``names()``, ``newest_version(name)``, ``parsed_schema(name)``,
  ``field_paths(name)``, ``details_from(name, record, allowed)``;
- domain names: ``EventType``, ``KOMMUNEKODER``, ``UNITS``, ``PARTNER_KINDS``;
- the edge: ``parse_partner(kind, payload)``, ``field_errors(exc)``,
  ``to_record(model, pseudonym_key, event_id)``, ``cloudevent_headers(record)``,
  ``pseudonym(cpr, key)``; synthetic data: ``generate_payloads(...)``;
- the audit trail: ``decision_id(...)`` / ``decision_id_of(record)``, one routing decision's id.
"""

from __future__ import annotations

from schemas.catalogue import CatalogueError, SchemaVersion, catalogue
from schemas.codec import (
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_SIZE,
    Decoded,
    DecodeError,
    EncodeError,
    RecordTooLarge,
    decode,
    encode,
    encode_version,
    parsed_schema,
    schema_id_of,
)
from schemas.cpr import CprError, birth_date, pseudonym
from schemas.dead_letters import (
    RETRY_COUNT_HEADER,
    carried_headers,
    encode_dead_letter,
    retry_count,
)
from schemas.decisions import decision_id, decision_id_of
from schemas.domain import (
    KOMMUNEKODER,
    PARTNER_KINDS,
    UNITS,
    EventType,
    event_type_of,
    schema_name_of,
)
from schemas.edge import PartnerEvent, field_errors
from schemas.mapping import build_headers, cloudevent_headers, source_uri, to_record
from schemas.partners import PARTNER_MODELS, parse_partner
from schemas.paths import details_from, field_paths, to_json, value_at
from schemas.synthetic import generate_payloads, write_payloads


def names() -> tuple[str, ...]:
    """Every schema name in the catalogue, e.g. dropout_notice, routed_task."""
    return catalogue().names


def newest_version(name: str) -> int:
    """The version ``encode`` writes and ``decode`` reads into."""
    return catalogue().get(name).version


def schema(name: str, version: int | None = None) -> SchemaVersion:
    """A catalogued schema (JSON, id, fingerprint); the newest unless ``version`` is given."""
    return catalogue().get(name, version)


__all__ = [
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_MAX_SIZE",
    "KOMMUNEKODER",
    "PARTNER_KINDS",
    "PARTNER_MODELS",
    "RETRY_COUNT_HEADER",
    "UNITS",
    "CatalogueError",
    "CprError",
    "DecodeError",
    "Decoded",
    "EncodeError",
    "EventType",
    "PartnerEvent",
    "RecordTooLarge",
    "SchemaVersion",
    "birth_date",
    "build_headers",
    "carried_headers",
    "cloudevent_headers",
    "decision_id",
    "decision_id_of",
    "decode",
    "details_from",
    "encode",
    "encode_dead_letter",
    "encode_version",
    "event_type_of",
    "field_errors",
    "field_paths",
    "generate_payloads",
    "names",
    "newest_version",
    "parse_partner",
    "parsed_schema",
    "pseudonym",
    "retry_count",
    "schema",
    "schema_id_of",
    "schema_name_of",
    "source_uri",
    "to_json",
    "to_record",
    "value_at",
    "write_payloads",
]
