"""``ungebus explain FILE``: what the router would decide for one partner event, and why.

For caseworkers, partners' IT staff and the data protection officer: it names the rule, the
basis with its citation, the fields each unit would see, and what waits for which consent.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

import schemas
from schemas.domain import KOMMUNEKODER, PARTNER_KINDS
from streams.routing.consent import Consent, ConsentState
from streams.routing.decide import Decision, InboundEvent, decide
from streams.routing.policy import DEFAULT_POLICY, Policy, PolicyError, load_policy

ROUTED_KINDS = tuple(k for k, name in PARTNER_KINDS.items() if not name.startswith("consent"))


def parse_any(payload: Any, kind: str | None) -> schemas.PartnerEvent:
    """The partner event in ``payload``; with no kind given, the one kind that fits it."""
    if kind is not None:
        return schemas.parse_partner(kind, payload)
    failures: list[tuple[int, str, ValidationError]] = []
    for candidate in ROUTED_KINDS:
        try:
            return schemas.parse_partner(candidate, payload)
        except ValidationError as exc:
            failures.append((exc.error_count(), candidate, exc))
    _count, closest, error = min(failures, key=lambda f: f[0])
    problems = "; ".join(f"{e['field']}: {e['reason']}" for e in schemas.field_errors(error))
    raise click.ClickException(
        f"the file is no valid partner event; closest kind is {closest}: {problems} "
        f"(give --kind to choose one of {', '.join(ROUTED_KINDS)})"
    )


def render(decision: Decision, event: InboundEvent, policy: Policy) -> str:
    """A plain-language account of a decision."""
    rules = {rule.id: rule for rule in policy.rules}
    lines = [
        f"{event.name} from a {event.source_kind} about a {event.age}-year-old living in "
        f"{_municipality(event.envelope['subject']['residence_kommunekode'])}",
        f"policy {decision.policy_version}: {decision.outcome.upper()}",
    ]
    for route in decision.routes:
        rule = rules[route.rule_id]
        lines += [
            f"  -> {route.unit} in {_municipality(route.kommunekode)} (rule {rule.id}, "
            f"priority {route.priority})",
            f"     basis: {route.basis} — {route.citation}",
            f"     must take over by {route.due_by.isoformat()}",
            f"     sees: {', '.join(route.details)}",
        ]
        if route.consent_id:
            lines.append(f"     consent used: {route.consent_id}")
        if rule.with_consent and not route.consent_id:
            lines.append(
                f"     with consent '{rule.with_consent.purpose}' it would also see: "
                f"{', '.join(rule.with_consent.fields)}"
            )
    for hold in decision.holds:
        lines.append(
            f"  .. {hold.unit} in {_municipality(hold.kommunekode)} waits for consent "
            f"'{hold.purpose}' until {hold.until.isoformat()} (rule {hold.rule_id})"
        )
    for hold in decision.expired:
        lines.append(f"  xx purged: no consent '{hold.purpose}' by {hold.until.isoformat()}")
    for denial in decision.denials:
        lines.append(f"  xx {denial.reason}")
    return "\n".join(lines)


def _municipality(kommunekode: str) -> str:
    return f"{KOMMUNEKODER.get(kommunekode, 'outside Vestegnen')} ({kommunekode})"


def _consent(spec: str, now: dt.datetime) -> Consent:
    try:
        purpose, unit, kommunekode = spec.split(":")
    except ValueError:
        raise click.BadParameter(f"{spec!r}: write purpose:unit:kommunekode") from None
    return Consent(
        f"explain-{purpose}", purpose, unit, kommunekode, "young_person", now,
        (now + dt.timedelta(days=365)).date(),
    )  # fmt: skip


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(ROUTED_KINDS), help="Partner kind (else inferred).")
@click.option(
    "--consent",
    "consents",
    multiple=True,
    metavar="PURPOSE:UNIT:KOMMUNEKODE",
    help="Pretend this consent is active (repeatable).",
)
@click.option("--policy", "policy_path", type=Path, default=DEFAULT_POLICY, show_default=True)
def explain(file: Path, kind: str | None, consents: tuple[str, ...], policy_path: Path) -> None:
    """Print the routing decision for one partner event (JSON as partners send it)."""
    from bus.settings import load_settings

    try:
        policy = load_policy(policy_path)
        payload = json.loads(file.read_text(encoding="utf-8"))
    except (PolicyError, json.JSONDecodeError) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        model = parse_any(payload, kind)
    except ValidationError as exc:
        problems = "; ".join(f"{e['field']}: {e['reason']}" for e in schemas.field_errors(exc))
        raise click.ClickException(f"invalid {kind}: {problems}") from exc
    name, record = schemas.to_record(model, load_settings().pseudonym_key(), "explain")
    event = InboundEvent(name, record)
    now = event.occurred_at  # as the router would decide on arrival
    state = ConsentState(tuple(_consent(spec, event.occurred_at) for spec in consents))
    click.echo(render(decide(event, state, policy, now), event, policy))
