"""``ungebus deadletters list|show|retry``: what failed, where, and putting it right.

``list`` and ``show`` run as ``ops`` (READ on ``deadletter`` and ``operations``, nothing
committed) or as ``admin``; ``--reveal`` and ``retry`` run as ``admin`` only, and each reveal
and each retry is recorded on ``operations`` before (a reveal) or as soon as (a retry) it
happens. Exit codes: 0 done, 1 refused or failed (the message says why).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import click
from pydantic import ValidationError

from bus.acls.admin_only import require_admin
from bus.records import NotDelivered
from bus.settings import Settings
from consumers.deadletters import actions, render
from consumers.deadletters.letters import (
    Filter,
    Letter,
    LetterError,
    counts,
    parse_age,
    parse_letter_at,
)
from consumers.deadletters.reading import ReadError, letters_of, read_one, read_topic
from consumers.deadletters.retry import (
    FromSource,
    NotRetried,
    Republish,
    Republisher,
    from_source,
    plan,
)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc


def _filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--component", help="only letters this component wrote (e.g. gateway)"),
        click.option("--reason", help="an error type (e.g. DecodeError), or words of the reason"),
        click.option("--source-topic", help="only letters of records read from this topic"),
        click.option("--older-than", metavar="AGE", help="failed longer ago than AGE (7d, 6h)"),
        click.option("--newer-than", metavar="AGE", help="failed within the last AGE"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _filter(settings: Settings, **given: str | None) -> Filter:
    try:
        older = given["older_than"]
        newer = given["newer_than"]
        source = given["source_topic"]
        prefix = settings.topic_prefix
        return Filter(
            component=given["component"],
            reason=given["reason"],
            source_topic=None if source is None or source.startswith(prefix) else prefix + source,
            older_than=None if older is None else parse_age(older, "--older-than"),
            newer_than=None if newer is None else parse_age(newer, "--newer-than"),
        )
    except LetterError as exc:
        raise click.UsageError(str(exc)) from exc


def _all_letters(settings: Settings) -> tuple[list[Letter], Any]:
    try:
        records = read_topic(settings, settings.topics.deadletter)
    except ReadError as exc:
        raise click.ClickException(str(exc)) from exc
    return letters_of(records, settings.producer_message_max_bytes)


def _letter_at(settings: Settings, at: str) -> Letter:
    try:
        partition, offset = parse_letter_at(at)
        found = read_one(settings, settings.topics.deadletter, partition, offset)
    except LetterError as exc:
        raise click.UsageError(str(exc)) from exc
    except ReadError as exc:
        raise click.ClickException(str(exc)) from exc
    if isinstance(found, str):
        raise click.ClickException(f"no dead letter at {at}: {found}")
    letters, unreadable = letters_of([found], settings.producer_message_max_bytes)
    if not letters:
        raise click.ClickException(f"the record at {at} is not a dead letter: {unreadable[0].why}")
    return letters[0]


def _recorded(settings: Settings) -> list[actions.Action] | str:
    """What operators did to this topic's letters (from ``operations``), or why unknown."""
    try:
        values = [r.value for r in read_topic(settings, settings.topics.operations)]
    except ReadError as exc:
        return str(exc)
    return actions.actions_of(values, settings.topics.deadletter)


def _original(settings: Settings, letter: Letter) -> Republish | NotRetried:
    """The original's bytes: from the letter, or read back from its source position."""
    step = plan(letter)
    if not isinstance(step, FromSource):
        return step
    try:
        found = read_one(
            settings, letter.source_topic, letter.source_partition, letter.source_offset
        )
    except ReadError as exc:
        return NotRetried(letter, f"its original cannot be read from {letter.source}: {exc}")
    return from_source(letter, found)


def _reveal(settings: Settings, letters: Sequence[Letter]) -> None:
    """Each original, decoded, once its reveal is on ``operations``."""
    from bus.keystore import KeyStoreError, keyring_for

    try:
        keyring = keyring_for(settings)  # originals are sealed per person; admin reads keys
    except KeyStoreError as exc:
        raise click.ClickException(f"not revealed: {exc}") from exc
    writer = Republisher(settings)
    who = actions.operator()
    try:
        for letter in letters:
            original = _original(settings, letter)
            if isinstance(original, NotRetried) and not letter.tombstone:
                click.echo(f"cannot reveal {letter.at}: {original.why}")
                continue
            record = actions.action_record(
                settings.topics.operations, actions.REVEAL, letter,
                principal=settings.kafka_principal, who=who, now=dt.datetime.now(dt.UTC),
            )  # fmt: skip
            try:
                writer.record(record)
            except NotDelivered as exc:
                raise click.ClickException(
                    f"not revealed: the reveal of {letter.at} could not be recorded on "
                    f"{settings.topics.operations}: {exc}"
                ) from exc
            value = original.value if isinstance(original, Republish) else None
            click.echo(render.revealed(letter, value, keyring))
    finally:
        writer.close()
        keyring.close()


@click.group("deadletters")
def deadletters() -> None:
    """Dead letters: list and show them (as ops or admin), retry them after a fix (admin)."""


@deadletters.command("list")
@_filter_options
@click.option("--limit", default=50, show_default=True, help="letters listed (0: all); newest")
@click.option("--reveal", is_flag=True, help="also print each original's payload (admin only)")
def list_command(limit: int, reveal: bool, **given: str | None) -> None:
    """Counts (by component, reason, source topic, age), then the letters, oldest first."""
    settings = _settings()
    wanted = _filter(settings, **given)
    if reveal:
        require_admin(settings, "--reveal", recorded=True)
    letters, unreadable = _all_letters(settings)
    recorded = _recorded(settings)
    if not isinstance(recorded, str):  # else the letters' own counts
        letters = actions.with_recorded_retries(letters, recorded)
    now = dt.datetime.now(dt.UTC)
    chosen = [letter for letter in letters if wanted.matches(letter, now)]
    topic = settings.topics.deadletter
    click.echo(render.summary(topic, counts(chosen, now), len(letters), unreadable))
    click.echo()
    click.echo(render.rows(chosen, limit))
    if reveal:
        _reveal(settings, chosen if limit <= 0 else chosen[-limit:])


@deadletters.command("show")
@click.argument("letter")
@click.option("--reveal", is_flag=True, help="also print the original's payload (admin only)")
def show(letter: str, reveal: bool) -> None:
    """One letter (partition/offset, as list prints it): reason, coordinates, sizes, whether it
    can be retried, and what operators did about it."""
    settings = _settings()
    if reveal:
        require_admin(settings, "--reveal", recorded=True)
    found = _letter_at(settings, letter)
    recorded = _recorded(settings)
    if not isinstance(recorded, str):
        (found,) = actions.with_recorded_retries([found], recorded)
    step = plan(found)
    if isinstance(step, NotRetried):
        note = f"cannot be retried: {step.why}"
    elif isinstance(step, FromSource):
        note = (
            f"kept by reference: can be retried while the original is still at {found.source} "
            "(with the SHA-256 above)"
        )
    else:
        note = f"can be retried: back to {found.source_topic} (retry {step.retry_count})"
    recorded = _recorded(settings)
    if isinstance(recorded, str):
        note += f" (operators' actions unavailable: {recorded})"
        recorded = []
    done = [action for action in recorded if action.letter == found.at]
    click.echo(render.details(found, note, done))
    if reveal:
        _reveal(settings, [found])


@deadletters.command("retry")
@click.argument("letters", nargs=-1)
@_filter_options
@click.option("--all", "everything", is_flag=True, help="every letter on the topic")
@click.option("--dry-run", is_flag=True, help="say what would be re-published; write nothing")
def retry(letters: tuple[str, ...], everything: bool, dry_run: bool, **given: str | None) -> None:
    """Re-publish originals to their source topics (admin): LETTERs (partition/offset), the
    letters a filter keeps, or --all. Safe to repeat: the same event id is a duplicate."""
    settings = _settings()
    wanted = _filter(settings, **given)
    chosen_ways = sum((bool(letters), not wanted.empty, everything))
    if chosen_ways != 1:
        raise click.UsageError(
            "retry which letters? Name them (0/42), give a filter (--component, --reason, "
            "--source-topic, --older-than, --newer-than), or --all: exactly one of these"
        )
    require_admin(settings, "retry", recorded=True)
    if letters:
        chosen = [_letter_at(settings, at) for at in letters]
    else:
        found, _unreadable = _all_letters(settings)
        now = dt.datetime.now(dt.UTC)
        chosen = [letter for letter in found if wanted.matches(letter, now)]
    if not chosen:
        click.echo("no dead letters to retry")
        return
    recorded = _recorded(settings)
    if isinstance(recorded, str):
        raise click.ClickException(f"cannot tell how often these were retried: {recorded}")
    chosen = actions.with_recorded_retries(chosen, recorded)
    retried, refused = _retry(settings, chosen, dry_run)
    verb = "would re-publish" if dry_run else "re-published"
    click.echo(f"{verb} {retried} of {len(chosen)} letters; {refused} not retried")
    if refused:
        raise SystemExit(1)


def _retry(settings: Settings, chosen: Sequence[Letter], dry_run: bool) -> tuple[int, int]:
    """Each letter's original back to its source, recorded; (re-published, not retried)."""
    writer = None if dry_run else Republisher(settings)
    who, seen = actions.operator(), dict[tuple[str, str | None, str], str]()
    retried = refused = 0
    try:
        for letter in chosen:
            step = _original(settings, letter)
            if isinstance(step, NotRetried):
                click.echo(f"not retried {letter.at}: {step.why}")
                refused += 1
                continue
            same = (step.topic, letter.event_id, hashlib.sha256(step.value).hexdigest())
            if same in seen:
                click.echo(f"skipped {letter.at}: the same record as {seen[same]}, retried once")
                continue
            seen[same] = letter.at
            if writer is None:
                click.echo(f"would retry {letter.at} -> {step.topic} (retry {step.retry_count})")
                retried += 1
                continue
            try:
                partition, offset = writer.republish(step)
            except NotDelivered as exc:
                click.echo(f"not retried {letter.at}: {exc}")
                refused += 1
                continue
            record = actions.action_record(
                settings.topics.operations, actions.RETRY, letter,
                principal=settings.kafka_principal, who=who, now=dt.datetime.now(dt.UTC),
                retry_count=step.retry_count, published=(partition, offset),
            )  # fmt: skip
            try:
                writer.record(record)
            except NotDelivered as exc:
                raise click.ClickException(
                    f"{letter.at} was re-published to {step.topic}/{partition}/{offset} but its "
                    f"retry could not be recorded on {settings.topics.operations}: {exc}"
                ) from exc
            click.echo(
                f"retried {letter.at} -> {step.topic}/{partition}/{offset} "
                f"(event {letter.event_id or '-'}, retry {step.retry_count})"
            )
            retried += 1
    finally:
        if writer is not None:
            writer.close()
    return retried, refused
