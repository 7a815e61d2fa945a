"""Reading what the bus seals: one keyring per test session and key store, as an admin
would hold one (``bus.keystore``)."""

from __future__ import annotations

from bus.crypto import is_sealed, unseal_value
from bus.keystore import KafkaKeyring, keyring_for
from bus.settings import Settings

_KEYRINGS: dict[tuple[str, str], KafkaKeyring] = {}


def keyring(settings: Settings) -> KafkaKeyring:
    """A started keyring on ``settings``' key store, shared by the session's tests."""
    where = (settings.kafka_bootstrap_servers, settings.topics.keys)
    if where not in _KEYRINGS:
        _KEYRINGS[where] = keyring_for(settings)
    return _KEYRINGS[where]


def opened(settings: Settings, value: bytes) -> bytes:
    """A record value unsealed (plain values as they are, without a keyring: a test's bus
    may have no key store)."""
    if not is_sealed(value):
        return value
    return unseal_value(keyring(settings), value)


def close_keyrings() -> None:
    """Close every keyring opened here (the session's broker is about to stop)."""
    while _KEYRINGS:
        _KEYRINGS.popitem()[1].close()
