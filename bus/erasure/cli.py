"""``ungebus erase``: forget one person on the bus (run as admin)."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from bus.acls.admin_only import require_admin
from bus.erasure.fact import Erasure
from bus.erasure.readable import personal_topics, readability
from bus.erasure.record import erasure_record
from bus.erasure.scan import needles, scan
from bus.erasure.subject import SubjectError, operator, subject_pseudonym
from bus.keystore import KeyStoreError, keyring_for
from bus.records import NotDelivered, Publisher
from bus.settings import PROJECT_ROOT, Settings
from bus.topics import ensure_topics

MAX_REASON = 500


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc


def pseudonym_of(settings: Settings, person: str) -> str:
    """The pseudonym of PERSON (``-``: read from standard input)."""
    given = sys.stdin.readline() if person == "-" else person
    try:
        return subject_pseudonym(given, settings.pseudonym_key())
    except SubjectError as exc:
        raise click.BadParameter(str(exc), param_hint="PERSON") from exc


@click.command("erase")
@click.argument("person")
@click.option(
    "--reason",
    required=True,
    help="why, e.g. the erasure request's case number and article (no personal data)",
)
def erase(person: str, reason: str) -> None:
    """Erase one person's personal data from the bus.

    Destroys the person's data keys, so every sealed record of theirs on every topic, replica
    and backup is unreadable from then on, and records the erasure on ``erasures`` (pseudonym,
    when, why, by whom): the inboxes, the router and the tracker delete what they hold of the
    person when they read it, and the audit store keeps it.

    PERSON is a CPR number or a pseudonym; ``-`` reads it from standard input (keeps a CPR
    number out of the shell's history). Runs as admin.
    """
    settings = _settings()
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise click.BadParameter(f"must be 1 to {MAX_REASON} characters", param_hint="--reason")
    require_admin(settings, "erase")
    pseudonym = pseudonym_of(settings, person)
    topics = settings.topics
    wanted = {topics.keys, topics.erasures}  # a bus from before erasure had neither
    ensure_topics(settings.kafka_config(), [t for t in topics.catalogue() if t.name in wanted])
    try:
        keyring = keyring_for(settings)
    except KeyStoreError as exc:
        raise click.ClickException(f"{exc}; nothing was erased") from exc
    try:
        destroyed = keyring.erase(pseudonym)
    except KeyStoreError as exc:
        raise click.ClickException(f"{exc}; run the command again") from exc
    finally:
        keyring.close()
    erasure = Erasure(
        subject_pseudonym=pseudonym,
        erased_at=dt.datetime.now(dt.UTC),
        reason=reason,
        principal=settings.kafka_principal,
        operator=operator(),
        keys_destroyed=destroyed,
    )
    try:
        [(partition, offset)] = Publisher(settings.producer_config(), 30.0).publish(
            [erasure_record(settings.topics.erasures, erasure)]
        )
    except NotDelivered as exc:
        raise click.ClickException(
            f"the data keys of {pseudonym} are destroyed ({destroyed}), but the erasure record "
            f"was not: {exc}. Run the command again to record it"
        ) from exc
    keys = "no data key was known" if not destroyed else f"{destroyed} data key(s) destroyed"
    click.echo(
        f"Erased {pseudonym}: {keys}; recorded on {settings.topics.erasures} "
        f"(partition {partition}, offset {offset}). The inboxes, the router and the tracker "
        "delete what they hold of this person when they read it."
    )


def default_scan_roots(settings: Settings) -> list[Path]:
    """This machine's stores: ``var/`` (the inbox's and audit store's SQLite files, the
    workers' state, the span files) and the local broker's and cluster's data."""
    kafka_home = os.environ.get("UNGEBUS_LOCAL_KAFKA_HOME")
    local = Path(kafka_home) if kafka_home else PROJECT_ROOT / "deploy" / "local" / ".kafka"
    return [root for root in (settings.var_dir, local) if root.exists()]


@click.command("erase-verify")
@click.argument("person")
@click.option("--text", "texts", multiple=True, help="a name or other text of theirs to look for")
@click.option(
    "--scan",
    "roots",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="a folder or file to search (default: var/ and the local broker's data)",
)
def erase_verify(person: str, texts: tuple[str, ...], roots: tuple[Path, ...]) -> None:
    """Check that nothing of one person is left in plaintext or readable.

    Searches every file under the given folders (Kafka's segment files with their compressed
    batches unpacked, the databases, the span files) for the person's CPR number and each
    ``--text``, and opens every sealed part of every record of theirs on the bus with a fresh
    keyring. Exit code 0 when nothing is found and nothing opens, 1 otherwise. Before an
    erasure, ``--scan`` on the broker's data shows that what is personal there is sealed.

    PERSON is a CPR number (searched for) or a pseudonym; ``-`` reads it from standard input.
    Runs as admin (it reads the data keys).
    """
    settings = _settings()
    require_admin(settings, "erase-verify")
    given = sys.stdin.readline().strip() if person == "-" else person.strip()
    pseudonym = pseudonym_of(settings, given)
    try:
        wanted = needles(None if given == pseudonym else given, texts)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--text") from exc
    where = list(roots) or default_scan_roots(settings)
    report = scan(where, wanted, skip=("lib",))
    click.echo(
        f"Searched {report.files} files ({report.bytes / 1e6:.1f} MB, {report.batches_unpacked} "
        f"compressed Kafka batches unpacked) under {', '.join(map(str, where))}"
    )
    for hit in report.hits:
        click.echo(f"  FOUND {hit.label} in {hit.path} ({hit.where})")
    if not report.hits:
        click.echo(f"  no {' or '.join(sorted({n.label for n in wanted}))} found")
    try:
        keyring = keyring_for(settings)
    except KeyStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        found = readability(settings, keyring, pseudonym, personal_topics(settings))
    finally:
        keyring.close()
    click.echo(
        f"Records of {pseudonym} on the bus: {found.records}; their sealed parts: "
        f"{found.readable} still open, {found.erased} erased"
    )
    if report.hits or found.readable:
        sys.exit(1)
