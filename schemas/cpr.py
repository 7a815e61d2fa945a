"""CPR numbers: format, birth date (century from digit 7), age and the keyed pseudonym.

Modulus-11 is deliberately not a validity rule: numbers issued since 2007 need not pass it.
No message here ever contains the number itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

_CPR = re.compile(r"([0-9]{6})-?([0-9]{4})")  # ASCII digits only
_WEIGHTS = (4, 3, 2, 7, 6, 5, 4, 3, 2, 1)


class CprError(ValueError):
    """A CPR number that cannot be a CPR number; the message never repeats the number."""


def digits(cpr: str) -> str:
    """The 10 digits of ``DDMMYY-SSSS`` or ``DDMMYYSSSS``."""
    match = _CPR.fullmatch(cpr)
    if match is None:
        raise CprError("must be DDMMYY-SSSS or 10 digits")
    return match.group(1) + match.group(2)


def birth_year(yy: int, digit7: int) -> int:
    """The full birth year: the CPR office's century rule on digit 7 (the serial's first)."""
    if digit7 <= 3:
        return 1900 + yy
    if digit7 in (4, 9):
        return (2000 if yy <= 36 else 1900) + yy
    return (2000 if yy <= 57 else 1800) + yy


def birth_date(cpr: str) -> dt.date:
    """The birth date a CPR number encodes; CprError if it is not a real date."""
    ten = digits(cpr)
    day, month, yy, digit7 = int(ten[0:2]), int(ten[2:4]), int(ten[4:6]), int(ten[6])
    year = birth_year(yy, digit7)
    try:
        return dt.date(year, month, day)
    except ValueError as exc:
        raise CprError("does not hold a real birth date (DDMMYY, century from digit 7)") from exc


def age_on(born: dt.date, day: dt.date) -> int:
    """Whole years of age on ``day``."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def passes_modulus_11(cpr: str) -> bool:
    """The old check-digit rule; informational only (synthetic data deliberately fails it)."""
    return sum(int(d) * w for d, w in zip(digits(cpr), _WEIGHTS, strict=True)) % 11 == 0


def pseudonym(cpr: str, key: bytes) -> str:
    """HMAC-SHA256 (hex) of the 10 CPR digits: the subject's stable, keyed pseudonym."""
    if not key:
        raise ValueError("the pseudonym key must not be empty")
    return hmac.new(key, digits(cpr).encode("ascii"), hashlib.sha256).hexdigest()
