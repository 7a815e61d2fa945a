"""``ungebus acl``: the ACL matrix (``show``), put on the cluster (``apply``), compared with
the cluster (``check``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

import click

from bus.acls.matrix import ADMIN, Acl, AclDiff, Operation, matrix
from bus.settings import Settings, load_settings


def partner_names(settings: Settings) -> list[str]:
    """The partners the matrix grants a topic: the configured partners file, else the local
    run's demo partners (read from ``var/`` if written, else their fixed names). Writes
    nothing."""
    from bus.demo_partners import demo_partners
    from bus.partners import load_partners

    path = settings.resolved_partners_file()
    if settings.partners_file is not None or path.exists():
        return sorted(load_partners(path).by_name)
    return sorted(p.name for p in demo_partners())


def generated(settings: Settings) -> tuple[Acl, ...]:
    return matrix(settings.topics, partner_names(settings))


def table(acls: Iterable[Acl]) -> list[str]:
    """One line per principal and resource, its operations together."""
    rows: dict[tuple[str, str, str, str], list[Operation]] = {}
    for acl in sorted(acls):
        key = (acl.principal, acl.resource_type.value, acl.pattern.value, acl.name)
        rows.setdefault(key, []).append(acl.operation)
    header = ("principal", "resource", "pattern", "name", "operations")
    order = {op: i for i, op in enumerate(Operation)}
    body = [
        (*key, ", ".join(op.value for op in sorted(ops, key=order.__getitem__)))
        for key, ops in rows.items()
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(4)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in [header, *body]
    ]


def as_json(acls: Iterable[Acl]) -> str:
    return json.dumps([dataclasses.asdict(a) for a in acls], indent=2)


def describe_diff(
    changes: AclDiff, words: tuple[str, str] = ("missing", "unexpected")
) -> list[str]:
    lines = []
    for sign, acls in zip(words, (changes.missing, changes.unexpected), strict=True):
        for acl in acls:
            lines.append(f"{sign:<10}  User:{acl.principal}  {acl.operation.value} on "
                         f"{acl.resource_type.value} {acl.pattern.value} {acl.name!r}"
                         + ("" if acl.permission == "ALLOW" else f" ({acl.permission})")
                         + ("" if acl.host == "*" else f" from {acl.host}"))  # fmt: skip
    return lines


class _ClusterError(click.ClickException):
    exit_code = 2


@click.group()
def acl() -> None:
    """Who may do what on Kafka: the ACLs generated from the bus's topics, municipalities
    and partners."""


@acl.command("show")
@click.option("--principal", help="only this principal's ACLs (e.g. inbox-161)")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)  # fmt: skip
def show(principal: str | None, fmt: str) -> None:
    """Print the ACL matrix (no Kafka needed)."""
    acls = [a for a in generated(load_settings()) if principal in (None, a.principal)]
    if principal is not None and not acls:
        detail = "the super user, who needs none" if principal == ADMIN else "not a principal"
        raise click.ClickException(f"{principal!r} has no ACLs: {detail}")
    if fmt == "json":
        click.echo(as_json(acls))
        return
    for line in table(acls):
        click.echo(line)
    count = len({a.principal for a in acls})
    click.echo(f"\n{len(acls)} ACLs for {count} principal{'s' if count > 1 else ''}; "
               f"{ADMIN} is the super user (super.users) and has none.")  # fmt: skip


@acl.command("apply")
@click.option(
    "--logins",
    "logins",
    type=click.Path(file_okay=False, path_type=Path),
    help="first store the SCRAM credential of each <principal>.password file in this folder",
)
def apply(logins: Path | None) -> None:
    """Create the missing ACLs, delete ungebus principals' ACLs not in the matrix (as the
    admin; idempotent)."""
    from bus.acls.cluster import AclError, ClusterAcls
    from bus.acls.logins import LoginError, read_password_files, store_logins

    settings = load_settings()
    if logins is not None:
        try:
            passwords = read_password_files(logins)
            store_logins(settings.kafka_config(), passwords)
        except LoginError as exc:
            raise _ClusterError(f"{exc} (on {settings.kafka_bootstrap_servers})") from exc
        click.echo(f"SCRAM credentials stored for {len(passwords)} principals: "
                   f"{', '.join(passwords)}")  # fmt: skip
    wanted = generated(settings)
    try:
        changes = ClusterAcls(settings.kafka_config()).apply(wanted)
    except AclError as exc:
        raise _ClusterError(f"{exc} (on {settings.kafka_bootstrap_servers})") from exc
    for line in describe_diff(changes, ("created", "deleted")):
        click.echo(line)
    click.echo(f"{len(changes.missing)} ACLs created, {len(changes.unexpected)} deleted, "
               f"{len(wanted) - len(changes.missing)} already there, on "
               f"{settings.kafka_bootstrap_servers}")  # fmt: skip


@acl.command("check")
def check() -> None:
    """Exit 1 and print the difference when the cluster's ACLs are not the matrix's
    (2 when the cluster cannot be read)."""
    from bus.acls.cluster import AclError, ClusterAcls

    settings = load_settings()
    wanted = generated(settings)
    try:
        changes = ClusterAcls(settings.kafka_config()).compare(wanted)
    except AclError as exc:
        raise _ClusterError(f"{exc} (on {settings.kafka_bootstrap_servers})") from exc
    if changes:
        for line in describe_diff(changes):
            click.echo(line)
        click.echo(f"The ACLs on {settings.kafka_bootstrap_servers} differ from the matrix: "
                   f"{len(changes.missing)} missing, {len(changes.unexpected)} unexpected; "
                   "`ungebus acl apply` (as the admin) makes them equal.")  # fmt: skip
        raise SystemExit(1)
    click.echo(f"The {len(wanted)} ACLs on {settings.kafka_bootstrap_servers} are the matrix's.")
