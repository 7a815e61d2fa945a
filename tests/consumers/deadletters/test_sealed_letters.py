"""A dead letter whose original is sealed (``bus.crypto``): the tool names it sealed personal
data with its pseudonym, never its content; ``--reveal`` (admin, with a keyring) unseals it."""

from __future__ import annotations

from bus.crypto import MemoryKeyring, seal
from consumers.deadletters.render import details, revealed, rows
from tests.consumers.deadletters.test_letters import CPR, NAME, _by_router, _letter, _original


def test_a_sealed_original_is_shown_as_sealed_with_its_pseudonym_and_unsealed_on_reveal() -> None:
    keyring = MemoryKeyring()
    key, plain, headers, pseudonym = _original()
    letter = _letter(*_by_router(key, seal(keyring, pseudonym, plain), headers))

    assert letter.sealed_for == pseudonym
    printed = f"{rows([letter], 0)}\n{details(letter, 'note', [])}"
    assert "sealed (personal data)" in printed
    assert f"sealed (personal data) of {pseudonym}" in printed
    assert letter.value is not None
    for shown in (printed, revealed(letter, letter.value)):  # no keyring: no plaintext
        assert CPR not in shown and NAME not in shown
    assert "this component holds no data keys" in revealed(letter, letter.value)

    opened = revealed(letter, letter.value, keyring)
    assert CPR in opened and NAME in opened
    assert f"unsealed: personal data of {pseudonym}" in opened

    keyring.erase(pseudonym)
    erased = revealed(letter, letter.value, keyring)
    assert "the data key is erased" in erased
    assert CPR not in erased and NAME not in erased


def test_a_plain_original_is_not_called_sealed() -> None:
    letter = _letter(*_by_router(*_original()[:3]))
    assert letter.sealed_for is None
    assert "sealed (personal data)" not in rows([letter], 0)
