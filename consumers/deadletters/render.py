"""What ``ungebus deadletters`` prints: counts first, then letters, never a personal field.

Only :meth:`Letter.safe` reaches the text (coordinates, ids, reason, sizes, header names);
the original's bytes are printed by :func:`revealed` alone, which the command calls only for
``admin`` after the reveal is recorded.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import schemas
from bus.crypto import Erased, Keyring, SealError, is_sealed, sealed_header, unseal_value
from consumers.deadletters.actions import Action
from consumers.deadletters.letters import Counts, Letter
from consumers.deadletters.reading import Unreadable

REASON_WIDTH = 90


def _per(pairs: list[tuple[str, int]]) -> str:
    return ", ".join(f"{name} {count}" for name, count in pairs) or "-"


def summary(topic: str, found: Counts, total: int, unreadable: Sequence[Unreadable]) -> str:
    """The counts: by component, reason (error type), source topic and age."""
    shown = "" if found.total == total else f" ({found.total} match the filter)"
    lines = [
        f"{total} dead letters on {topic}{shown}",
        f"  by component:    {_per(found.by_component)}",
        f"  by reason:       {_per(found.by_reason)}",
        f"  by source topic: {_per(found.by_source_topic)}",
        f"  by age:          {_per(found.by_age)}",
    ]
    if unreadable:
        lines.append(
            f"  not dead letters: {len(unreadable)} records "
            f"({', '.join(f'{u.partition}/{u.offset}' for u in unreadable[:10])}"
            f"{', ...' if len(unreadable) > 10 else ''})"
        )
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def rows(letters: Sequence[Letter], limit: int) -> str:
    """One line per letter, newest last; at most ``limit`` (0: all), the newest kept."""
    if not letters:
        return "no dead letters"
    kept = letters if limit <= 0 else letters[-limit:]
    head = "" if len(kept) == len(letters) else f"the newest {len(kept)} of {len(letters)}:\n"
    lines = []
    for letter in kept:
        safe = letter.safe()
        retries = f" retried {safe['retries']}x" if safe["retries"] else ""
        lines.append(
            f"{safe['letter']:>8}  {safe['failed_at']}  {safe['component']:<14} "
            f"{safe['error_type']:<18} {safe['kind'] or '-':<22} event {safe['event_id'] or '-'}"
            f"  from {safe['source']}  value {safe['value_bytes'] or 0:,} B"
            f" ({safe['kept']}{', sealed (personal data)' if safe['sealed'] else ''}){retries}\n"
            f"{'':>10}{_clip(' '.join(str(safe['reason']).split()), REASON_WIDTH)}"
        )
    return head + "\n".join(lines)


def details(letter: Letter, retry_note: str, actions: Sequence[Action]) -> str:
    """One letter in full: where, what failed and why, sizes, whether it can be retried."""
    safe = letter.safe()
    lines = [
        f"letter        {letter.topic} {safe['letter']}",
        f"failed at     {safe['failed_at']}",
        f"component     {safe['component']}",
        f"error type    {safe['error_type']}",
        f"event id      {safe['event_id'] or '-'}",
        f"event kind    {safe['kind'] or '-'}",
        f"source        {safe['source']} (topic/partition/offset)",
        f"original      {safe['kept']}: key {safe['key_bytes']:,} B, value "
        f"{safe['value_bytes'] or 0:,} B"
        + (f", SHA-256 {safe['value_sha256']}" if safe["value_sha256"] else ""),
        f"headers       {', '.join(safe['headers']) or '-'} ({letter.headers_size:,} B)",
        f"content       {_content(safe['sealed'])}",
        f"retried       {safe['retries']} times",
        f"retry         {retry_note}",
        "reason        " + str(safe["reason"]),
    ]
    for action in actions:
        where = f" -> {action.published}" if action.published else ""
        count = f" (retry {action.retry_count})" if action.retry_count else ""
        lines.append(
            f"operator      {action.action} at {_time(action.at)} by {action.principal} "
            f"({action.operator}){count}{where}"
        )
    return "\n".join(lines)


def _content(sealed_for: str | None) -> str:
    if sealed_for is None:
        return "as the original was written (see --reveal)"
    return f"sealed (personal data) of {sealed_for}; --reveal unseals it"


def revealed(letter: Letter, value: bytes | None, keyring: Keyring | None = None) -> str:
    """The original's payload, decoded (unsealed with ``keyring`` when sealed): for
    ``--reveal`` under admin only."""
    if value is None:
        return f"original of {letter.at}: no value"
    unsealed = ""
    if is_sealed(value):
        try:
            whose = sealed_header(value).pseudonym
            value = unseal_value(keyring, value)
        except Erased as exc:
            return f"original of {letter.at}: sealed (personal data) of {exc.pseudonym}: {exc}"
        except SealError as exc:
            return f"original of {letter.at}: {len(value):,} bytes sealed, not readable: {exc}"
        unsealed = f" (unsealed: personal data of {whose})"
    try:
        name, version, record = schemas.decode(value, max_size=len(value) + 1)
    except schemas.DecodeError as exc:
        return (
            f"original of {letter.at}: {len(value):,} bytes that do not decode ({exc}); "
            f"first bytes: {value[:64].hex()}"
        )
    body = json.dumps(json.loads(schemas.to_json(record)), indent=2, ensure_ascii=False)
    return f"original of {letter.at}: {name} v{version}{unsealed}\n{body}"


def _time(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
