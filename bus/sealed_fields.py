"""Personal fields of bus records sealed one by one: a routed task's ``details`` map, a
take-over's free-text note.

Such records travel in the clear as far as the bus needs (ids, units, due dates, the
pseudonym: the tracker reads them without any key), and the personal part rides in one
``sealed_*`` bytes field, sealed with the person's data key (``bus.crypto``). A map is
sealed as JSON with sorted keys, so the same details always give the same plaintext.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Protocol

from bus.crypto import DataKey, Keyring, SealError, seal, unseal


class KeyLookup(Protocol):
    """Read access to a person's existing keys, for a component that may not create keys
    (an inbox sealing a take-over's note)."""

    def keys_of(self, pseudonym: str) -> list[DataKey]: ...


def seal_map(keyring: Keyring, pseudonym: str, values: Mapping[str, str]) -> bytes:
    """``values`` (path -> text) sealed under ``pseudonym``'s data key."""
    plain = json.dumps(dict(values), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return seal(keyring, pseudonym, plain.encode())


def unseal_map(keyring: Keyring, value: bytes) -> dict[str, str]:
    """The map :func:`seal_map` sealed; ``Erased`` when the key is gone, ``SealError`` when
    the bytes are not a sealed map of texts."""
    try:
        values = json.loads(unseal(keyring, value))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SealError("the sealed value is not a JSON map") from exc
    if not isinstance(values, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in values.items()
    ):
        raise SealError("the sealed value is not a map of texts")
    return values


def seal_text(keyring: Keyring, pseudonym: str, text: str) -> bytes:
    return seal(keyring, pseudonym, text.encode())


def unseal_text(keyring: Keyring, value: bytes) -> str:
    try:
        return unseal(keyring, value).decode()
    except UnicodeDecodeError as exc:
        raise SealError("the sealed value is not UTF-8 text") from exc
