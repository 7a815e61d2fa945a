"""``ungebus replay --since DATE [--policy FILE] [--dry-run] [--csv FILE]``.

With ``--dry-run`` it is the policy preview: every event since DATE decided under the policy
in force (``--current``) and under ``--policy``, what differs summed up on stdout and listed in
``--csv``; nothing is written to Kafka. Without it, the events since DATE are routed again
under ``--policy`` (the policy in force): the tasks that are not on their topics yet are
written, with their audit decisions. Progress and the rate go to stderr.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from streams.routing.policy import DEFAULT_POLICY, Policy, PolicyError, load_policy

if TYPE_CHECKING:
    from bus.settings import Settings
    from streams.replay.run import Replay
    from streams.routing.senders import Senders

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """An ISO date or date and time; UTC unless it carries an offset."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a date: give 2026-11-01 or 2026-11-01T08:00 (UTC unless an "
            "offset such as +01:00 is given)",
            param_hint="--since",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    if moment > now:
        raise click.BadParameter(f"{moment.isoformat()} is in the future", param_hint="--since")
    return moment


@click.command()
@click.option(
    "--since",
    "since_text",
    required=True,
    metavar="DATE",
    help="replay the events the bus accepted at or after DATE (ISO; UTC by default)",
)
@click.option(
    "--policy",
    "policy_path",
    type=_FILE,
    help="with --dry-run: the candidate policy; without: the policy to route under "
    f"(the router's) [default: {DEFAULT_POLICY.name}]",
)
@click.option(
    "--current",
    "current_path",
    type=_FILE,
    default=DEFAULT_POLICY,
    help="the policy in force, which --dry-run compares --policy with "
    f"[default: {DEFAULT_POLICY.name}]",
)
@click.option("--dry-run", is_flag=True, help="preview only: write nothing to Kafka")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="with --dry-run: every change of every event, one row each")  # fmt: skip
def replay(
    since_text: str,
    policy_path: Path | None,
    current_path: Path,
    dry_run: bool,
    csv_path: Path | None,
) -> None:
    """Route the history since DATE again: a policy preview (--dry-run) or for real."""
    from pydantic import ValidationError

    from bus.access import KafkaAccessError, check_access
    from bus.keystore import KeyStoreError, keyring_for
    from bus.settings import load_settings
    from streams.replay.history import HistoryError
    from streams.replay.reroute import RerouteError
    from streams.replay.run import Replay

    if csv_path is not None and not dry_run:
        raise click.UsageError("--csv is the preview's: give it with --dry-run")
    now = dt.datetime.now(dt.UTC)
    since = parse_since(since_text, now)
    current = _policy(current_path, "--current")
    chosen = _policy(policy_path, "--policy") if policy_path is not None else current
    try:
        settings = load_settings()
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        check_access(settings, [settings.topics.inbound_events])
    except KafkaAccessError as exc:
        raise click.ClickException(str(exc)) from exc
    _say(f"Reading {settings.topics.inbound_events} as principal {settings.kafka_principal}")
    try:
        keyring = keyring_for(settings)  # the records are sealed per person
    except KeyStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    run = Replay(settings, _senders(settings), since, now, _bar, keyring)
    started = time.monotonic()
    try:
        decided = _preview(run, current, chosen, csv_path) if dry_run else _reroute(run, chosen)
    except (HistoryError, RerouteError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        keyring.close()
    took = time.monotonic() - started
    _say(f"{decided:,} events in {took:.1f} s: {decided / max(took, 1e-9):,.0f} events/s")


def _preview(run: Replay, current: Policy, candidate: Policy, csv_path: Path | None) -> int:
    from streams.replay.run import preview

    with contextlib.ExitStack() as stack:
        out = stack.enter_context(csv_path.open("w", newline="")) if csv_path else None
        report, tally = preview(run, current, candidate, out)
    for line in report.summary(tally):
        click.echo(line)
    if csv_path is not None:
        click.echo(f"Every change, one row each: {csv_path}")
    click.echo("Dry run: nothing was written to Kafka.")
    return tally.decided


def _reroute(run: Replay, policy: Policy) -> int:
    from streams.replay.run import reroute

    done, tally = reroute(run, policy)
    click.echo(
        f"Replayed {tally.decided:,} events since {run.since.isoformat()} under policy "
        f"{policy.version} ({tally.consents:,} consent records folded)"
    )
    for reason, n in sorted(tally.left_out.items()):
        click.echo(f"  left out, as the router would: {n:,} {reason}")
    click.echo(done.summary())
    return tally.decided


def _policy(path: Path, option: str) -> Policy:
    try:
        return load_policy(path)
    except PolicyError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc


def _senders(settings: Settings) -> Senders:
    from bus.demo_partners import load_or_create_partners
    from bus.partners import PartnerConfigError
    from streams.routing.senders import Senders

    try:
        registry, _tokens = load_or_create_partners(settings)
    except PartnerConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    return Senders.from_registry(registry)


@contextlib.contextmanager
def _bar(label: str, length: int) -> Iterator[Callable[[int], None]]:
    with click.progressbar(length=length, label=f"{label:>8}", file=sys.stderr) as bar:
        yield bar.update


def _say(text: str) -> None:
    click.echo(text, err=True)
