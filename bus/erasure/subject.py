"""Whom an erasure is about, from what a DPO has at hand: a CPR number or a pseudonym."""

from __future__ import annotations

import getpass
import re
import socket

from schemas.cpr import CprError, pseudonym

_PSEUDONYM = re.compile(r"[0-9a-f]{64}")


class SubjectError(ValueError):
    """Neither a CPR number nor a pseudonym; the message never repeats what was given."""


def subject_pseudonym(given: str, pseudonym_key: bytes) -> str:
    """The pseudonym of ``given``: itself if it is one (64 hex digits), else the keyed
    pseudonym of the CPR number it is (``DDMMYY-SSSS`` or 10 digits)."""
    text = given.strip()
    if _PSEUDONYM.fullmatch(text):
        return text
    try:
        return pseudonym(text, pseudonym_key)
    except CprError as exc:
        raise SubjectError(
            "the person must be given as a CPR number (DDMMYY-SSSS or 10 digits) or a "
            "pseudonym (64 hex digits)"
        ) from exc


def operator() -> str:
    """Who ran the command: ``login@host`` (``unknown`` for a login the system cannot name)."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return f"{login}@{socket.gethostname()}"
