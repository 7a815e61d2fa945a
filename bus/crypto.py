"""Personal data sealed per person, so that a person can be forgotten on an append-only log.

Every record that carries a young person's personal data leaves its producer **sealed**: the
record's bytes encrypted with that person's own data key (AES-256-GCM, from ``cryptography``).
Destroying the data key (``ungebus erase``) makes every copy of every sealed record of that
person unreadable at once — on every topic, replica, changelog and backup — without touching
the log (crypto-shredding). The pseudonym stays in the clear: it is the record's Kafka key
already, and the bus's ordering and partitioning depend on it.

A sealed value, byte by byte::

    0x55 'U' | format 1 | pseudonym length (1 byte) | pseudonym (ASCII) | key id (8 bytes)
    | nonce (12 bytes) | ciphertext with its 16-byte tag

The header up to the key id is the cipher's associated data: a sealed value cannot be moved to
another person or key without failing authentication. A Confluent-framed Avro record starts
with the magic byte 0, so a reader tells sealed from plain by the first byte
(:func:`is_sealed`); plain records written before sealing existed still read
(:func:`unseal_value` passes them through).

Data keys are kept by a :class:`Keyring`; where they live is the keyring's business
(``bus.keystore``: a compacted, access-controlled Kafka topic, each key wrapped with the
deployment's master key; :class:`MemoryKeyring` for unit tests). :func:`wrap_key` and
:func:`unwrap_key` are the master-key half of that.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEALED_MAGIC = 0x55
FORMAT = 1
KEY_ID_BYTES = 8
NONCE_BYTES = 12
TAG_BYTES = 16
DATA_KEY_BYTES = 32  # AES-256
MAX_PSEUDONYM_BYTES = 255
_PREFIX = struct.Struct(">BBB")


class Erased(LookupError):
    """The person's data key is gone (erased, or never known here): their sealed data reads
    as erased. ``pseudonym`` says whose; it is not personal data on its own."""

    def __init__(self, pseudonym: str, reason: str = "the data key is erased") -> None:
        super().__init__(f"the personal data of {pseudonym} cannot be read: {reason}")
        self.pseudonym = pseudonym


class SealError(ValueError):
    """Bytes that claim to be sealed but are not a valid sealed value (truncated, tampered
    with, or sealed under another key)."""


@dataclass(frozen=True)
class DataKey:
    """One person's data key. ``key_id`` tells two keys of one person apart (two connectors
    may each create one for a person new to both; both stay valid until erased)."""

    pseudonym: str
    key_id: bytes
    secret: bytes = field(repr=False)

    @classmethod
    def new(cls, pseudonym: str) -> DataKey:
        _check_pseudonym(pseudonym)
        return cls(pseudonym, os.urandom(KEY_ID_BYTES), AESGCM.generate_key(256))

    @property
    def name(self) -> str:
        """The key's record key in the key store: ``<pseudonym>:<key id hex>``."""
        return f"{self.pseudonym}:{self.key_id.hex()}"


class Keyring(Protocol):
    """Where a component finds data keys (its principal's access to them)."""

    def sealing_key(self, pseudonym: str) -> DataKey:
        """The key to seal this person's data with: an existing one, or a new one that is
        stored durably before it is returned (so nothing is ever sealed under a key that could
        be lost)."""
        ...

    def key(self, pseudonym: str, key_id: bytes) -> DataKey | None:
        """The key a sealed value names; None when it is erased or unknown."""
        ...


# -- sealing ----------------------------------------------------------------------------------
def seal(keyring: Keyring, pseudonym: str, plaintext: bytes) -> bytes:
    """``plaintext`` sealed under ``pseudonym``'s data key."""
    return seal_with(keyring.sealing_key(pseudonym), plaintext)


def seal_with(key: DataKey, plaintext: bytes) -> bytes:
    header = _header(key.pseudonym, key.key_id)
    nonce = os.urandom(NONCE_BYTES)
    return header + nonce + AESGCM(key.secret).encrypt(nonce, plaintext, header)


def is_sealed(value: bytes | None) -> bool:
    return bool(value) and value[0] == SEALED_MAGIC  # type: ignore[index]


@dataclass(frozen=True)
class SealedHeader:
    pseudonym: str
    key_id: bytes
    size: int  # the header's length in bytes (the nonce follows)


def sealed_header(value: bytes) -> SealedHeader:
    """Whose and which key, read without any key (``SealError`` if it is not a sealed value)."""
    if len(value) < _PREFIX.size:
        raise SealError("too short to be a sealed value")
    magic, version, length = _PREFIX.unpack_from(value)
    if magic != SEALED_MAGIC or version != FORMAT:
        raise SealError(f"not a sealed value (magic {magic}, format {version})")
    end = _PREFIX.size + length + KEY_ID_BYTES
    if len(value) < end + NONCE_BYTES + TAG_BYTES:
        raise SealError("truncated sealed value")
    try:
        pseudonym = value[_PREFIX.size : _PREFIX.size + length].decode("ascii")
    except UnicodeDecodeError as exc:
        raise SealError("the sealed value's pseudonym is not ASCII") from exc
    return SealedHeader(pseudonym, bytes(value[end - KEY_ID_BYTES : end]), end)


def unseal(keyring: Keyring, value: bytes) -> bytes:
    """The plaintext of a sealed value. ``Erased`` when its key is gone, ``SealError`` when the
    bytes are not a valid sealed value."""
    header = sealed_header(value)
    key = keyring.key(header.pseudonym, header.key_id)
    if key is None:
        raise Erased(header.pseudonym)
    return unseal_with(key, value, header)


def unseal_with(key: DataKey, value: bytes, header: SealedHeader | None = None) -> bytes:
    header = header or sealed_header(value)
    nonce = value[header.size : header.size + NONCE_BYTES]
    try:
        return AESGCM(key.secret).decrypt(
            nonce, value[header.size + NONCE_BYTES :], value[: header.size]
        )
    except InvalidTag as exc:
        raise SealError("the sealed value does not authenticate under its key") from exc


def unseal_value(keyring: Keyring | None, value: bytes) -> bytes:
    """A record value as the codec reads it: unsealed if sealed, as it is if plain (records
    written before sealing). Without a keyring a sealed value is ``Erased`` to this reader."""
    if not is_sealed(value):
        return value
    if keyring is None:
        raise Erased(sealed_header(value).pseudonym, "this component holds no data keys")
    return unseal(keyring, value)


# -- the master key: data keys at rest ---------------------------------------------------------
def wrap_key(master_key: bytes, key: DataKey) -> bytes:
    """The data key encrypted under the master key, bound to its name (nonce + ciphertext)."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(master_key).encrypt(nonce, key.secret, key.name.encode())


def unwrap_key(master_key: bytes, pseudonym: str, key_id: bytes, wrapped: bytes) -> DataKey:
    """The data key from :func:`wrap_key`'s bytes (``SealError`` under another master key)."""
    name = f"{pseudonym}:{key_id.hex()}".encode()
    try:
        secret = AESGCM(master_key).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], name)
    except InvalidTag as exc:
        raise SealError(f"data key {name.decode()} does not unwrap under this master key") from exc
    return DataKey(pseudonym, key_id, secret)


# -- in memory ---------------------------------------------------------------------------------
@dataclass
class MemoryKeyring:
    """A keyring in one process's memory (unit tests, benchmarks): ``erase`` forgets a
    person's keys."""

    keys: dict[str, dict[bytes, DataKey]] = field(default_factory=dict)  # per person, by id

    def sealing_key(self, pseudonym: str) -> DataKey:
        known = self.keys.get(pseudonym)
        if known:
            return next(iter(known.values()))
        key = DataKey.new(pseudonym)
        self.keys[pseudonym] = {key.key_id: key}
        return key

    def key(self, pseudonym: str, key_id: bytes) -> DataKey | None:
        return self.keys.get(pseudonym, {}).get(key_id)

    def keys_of(self, pseudonym: str) -> list[DataKey]:
        return list(self.keys.get(pseudonym, {}).values())

    def erase(self, pseudonym: str) -> int:
        """Forget every key of ``pseudonym``; how many there were."""
        return len(self.keys.pop(pseudonym, {}))


def _header(pseudonym: str, key_id: bytes) -> bytes:
    raw = _check_pseudonym(pseudonym)
    return _PREFIX.pack(SEALED_MAGIC, FORMAT, len(raw)) + raw + key_id


def _check_pseudonym(pseudonym: str) -> bytes:
    try:
        raw = pseudonym.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError("a pseudonym must be ASCII") from exc
    if not raw or len(raw) > MAX_PSEUDONYM_BYTES:
        raise ValueError(f"a pseudonym must be 1 to {MAX_PSEUDONYM_BYTES} bytes")
    return raw
