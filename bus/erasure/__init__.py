"""Erasing one person: ``ungebus erase`` (their data keys destroyed, the erasure recorded on
``erasures`` for every component to act on) and ``ungebus erase-verify`` (no plaintext of theirs
left on disk, nothing of theirs decryptable)."""
