"""Who may send what: partners, their credentials and the sources they may speak for.

A partner is an institution's system (a gymnasium, a prison, a ward, UU, a municipality). Its
entry in the partners file binds a credential (the SHA-256 of a bearer token, and/or the
SHA-256 fingerprints of client certificates) to the event kinds it may send and the source
identities it may claim (``institution:916101``, ``municipality:167``...). Only hashes live
in the file; the tokens themselves are handed to the partners and never stored by the bus.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from schemas import PARTNER_KINDS

# Partner kind -> (source kind in the envelope, the payload field that names the source).
SOURCES: Mapping[str, tuple[str, str]] = {
    "dropout_notice": ("institution", "institution_number"),
    "release_planning_prison": ("prison", "prison_id"),
    "release_planning_psychiatry": ("psychiatric_ward", "ward_id"),
    "handover_uu": ("uu_centre", "uu_centre_id"),
    "handover_municipality": ("municipality", "from_kommunekode"),
    "school_absence_signal": ("school", "institution_number"),
    "consent_granted": ("municipality", "recipient_kommunekode"),
    "consent_withdrawn": ("municipality", "recipient_kommunekode"),
}
SOURCE_KINDS = frozenset(kind for kind, _ in SOURCES.values())
_HEX64 = re.compile(r"[0-9a-f]{64}")


class PartnerConfigError(ValueError):
    """The partners file is missing or wrong; the message names the file and the entry."""


def token_sha256(token: str) -> str:
    """What the partners file holds for a bearer token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Partner:
    name: str
    kinds: frozenset[str]
    sources: frozenset[tuple[str, str]]

    def may_send(self, kind: str) -> bool:
        return kind in self.kinds

    def may_claim(self, source_kind: str, source_id: str) -> bool:
        return (source_kind, source_id) in self.sources

    def sources_for(self, kind: str) -> list[str]:
        """The ids this partner may claim for ``kind``, for error messages."""
        source_kind = SOURCES[kind][0]
        return sorted(sid for skind, sid in self.sources if skind == source_kind)


class PartnerRegistry:
    """Partners by name, by token hash and by client-certificate fingerprint."""

    def __init__(
        self,
        partners: Iterable[Partner],
        tokens: Mapping[str, str] | None = None,
        certs: Mapping[str, str] | None = None,
    ) -> None:
        self.by_name = {p.name: p for p in partners}
        self._tokens = dict(tokens or {})  # sha256(token) -> partner name
        self._certs = dict(certs or {})  # sha256(DER certificate) -> partner name

    def __len__(self) -> int:
        return len(self.by_name)

    def get(self, name: str) -> Partner | None:
        return self.by_name.get(name)

    def from_token(self, token: str) -> Partner | None:
        name = self._tokens.get(token_sha256(token))
        return None if name is None else self.by_name[name]

    def from_certificate(self, fingerprint: str) -> Partner | None:
        name = self._certs.get(fingerprint.lower().replace(":", ""))
        return None if name is None else self.by_name[name]


# -- the partners file ------------------------------------------------------------------------


def _hex64(value: str) -> str:
    value = value.lower().replace(":", "")
    if not _HEX64.fullmatch(value):
        raise ValueError("must be a SHA-256 as 64 hex digits")
    return value


def _kind(value: str) -> str:
    if value not in PARTNER_KINDS:
        raise ValueError(f"unknown event kind {value!r}; known: {', '.join(PARTNER_KINDS)}")
    return value


def _source(value: str) -> str:
    kind, _, source_id = value.partition(":")
    if kind not in SOURCE_KINDS or not source_id:
        raise ValueError(
            f"source {value!r} must be <kind>:<id> with kind one of {sorted(SOURCE_KINDS)}"
        )
    return value


def _split_source(value: str) -> tuple[str, str]:
    kind, _, source_id = value.partition(":")
    return kind, source_id


Hex64 = Annotated[str, AfterValidator(_hex64)]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    token_sha256: Hex64 | None = None
    cert_sha256: list[Hex64] = Field(default_factory=list)
    kinds: list[Annotated[str, AfterValidator(_kind)]] = Field(min_length=1)
    sources: list[Annotated[str, AfterValidator(_source)]] = Field(min_length=1)


def load_partners(path: Path) -> PartnerRegistry:
    """Read and check a partners file; every mistake is a PartnerConfigError in plain words."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PartnerConfigError(f"partners file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise PartnerConfigError(f"partners file {path} is not valid TOML: {exc}") from None
    return parse_partners(document, str(path))


def parse_partners(document: Mapping[str, Any], origin: str = "partners") -> PartnerRegistry:
    entries = document.get("partner", [])
    if not isinstance(entries, list):
        raise PartnerConfigError(f"{origin}: partners are [[partner]] tables")
    partners: list[Partner] = []
    tokens: dict[str, str] = {}  # credential hash -> partner name
    certs: dict[str, str] = {}
    for i, raw in enumerate(entries, 1):
        try:
            entry = _Entry.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors()
            )
            raise PartnerConfigError(f"{origin}: partner #{i}: {problems}") from None
        where = f"{origin}: partner {entry.name!r}"
        if not entry.token_sha256 and not entry.cert_sha256:
            raise PartnerConfigError(f"{where} has no credential (token_sha256 or cert_sha256)")
        if any(p.name == entry.name for p in partners):
            raise PartnerConfigError(f"{where} appears twice")
        sources = frozenset(_split_source(s) for s in entry.sources)
        for kind in entry.kinds:
            if not any(skind == SOURCES[kind][0] for skind, _ in sources):
                raise PartnerConfigError(
                    f"{where} may send {kind} but has no {SOURCES[kind][0]}:<id> source"
                )
        credentials = [(entry.token_sha256, tokens)] if entry.token_sha256 else []
        credentials += [(cert, certs) for cert in entry.cert_sha256]
        for credential, table in credentials:
            if credential in table:
                raise PartnerConfigError(f"{where} shares a credential with {table[credential]!r}")
            table[credential] = entry.name
        partners.append(Partner(entry.name, frozenset(entry.kinds), sources))
    if not partners:
        raise PartnerConfigError(f"{origin}: no [[partner]] entries")
    return PartnerRegistry(partners, tokens, certs)


def render_partner(
    name: str,
    kinds: Iterable[str],
    sources: Iterable[str],
    *,
    token_hash: str | None = None,
    cert_fingerprints: Iterable[str] = (),
) -> str:
    """One [[partner]] table in the partners file's format (for the demo and for tests)."""
    lines = ["[[partner]]", f'name = "{name}"']
    if token_hash:
        lines.append(f'token_sha256 = "{token_hash}"')
    certs = list(cert_fingerprints)
    if certs:
        lines.append("cert_sha256 = [" + ", ".join(f'"{c}"' for c in certs) + "]")
    lines.append("kinds = [" + ", ".join(f'"{k}"' for k in kinds) + "]")
    lines.append("sources = [" + ", ".join(f'"{s}"' for s in sources) + "]")
    return "\n".join(lines) + "\n"
