"""``ungebus schemas ...`` and ``ungebus generate``: the contract check, the registry export and
synthetic partner payloads. Registered by ``bus.cli``; runnable alone as
``python -m schemas.cli``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from schemas.catalogue import PACKAGE_DIR, CatalogueError, load_catalogue
from schemas.compat import check, lock, registry_import
from schemas.synthetic import DEFAULT_REFERENCE_DATE, generate_payloads, write_payloads

_DIR_OPTION = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=PACKAGE_DIR,
    show_default="the schemas package",
    help="Folder holding catalogue.json, catalogue.lock.json and avsc/.",
)


@click.group("schemas")
def schemas_group() -> None:
    """The event contracts: Avro schemas with pinned ids."""


@schemas_group.command("check")
@_DIR_OPTION
def check_command(directory: Path) -> None:
    """Fail (exit 1) unless every schema is compatible, documented and locked as released."""
    problems = check(directory)
    if problems:
        click.echo(f"schema check FAILED: {len(problems)} problem(s)", err=True)
        for problem in problems:
            click.echo(f"  - {problem}", err=True)
        raise SystemExit(1)
    cat = load_catalogue(directory)
    click.echo(f"schema check ok: {len(cat.versions)} versions of {len(cat.names)} schemas")


@schemas_group.command("lock")
@_DIR_OPTION
def lock_command(directory: Path) -> None:
    """Pin new versions' id and fingerprint in catalogue.lock.json (append-only)."""
    try:
        added = lock(directory)
    except CatalogueError as exc:
        raise click.ClickException(f"not locking: {exc}") from exc
    for entry in added:
        click.echo(f"locked {entry['name']} v{entry['version']} as id {entry['id']}")
    if not added:
        click.echo("nothing new to lock")


@schemas_group.command("export")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@_DIR_OPTION
def export_command(out: Path, directory: Path) -> None:
    """Write the catalogue for a Confluent Schema Registry in IMPORT mode.

    The registry (or the subjects) must be empty to enter IMPORT mode. Then, with SR=the
    registry URL and CT='Content-Type: application/vnd.schemaregistry.v1+json':

    \b
      curl -X PUT -H "$CT" --data '{"mode": "IMPORT"}' "$SR/mode"
      jq -c '.schemas[]' FILE | while read -r s; do
        subject=$(jq -r .subject <<<"$s")
        jq -c '{schema, schemaType, id, version}' <<<"$s" |
          curl -X POST -H "$CT" --data @- "$SR/subjects/$subject/versions"
      done
      curl -X PUT -H "$CT" --data '{"mode": "READWRITE"}' "$SR/mode"

    Subjects are the Avro full names (RecordNameStrategy), so producers using Confluent's
    serializers need ``value.subject.name.strategy`` set to RecordNameStrategy.
    """
    problems = check(directory)
    if problems:
        raise click.ClickException(
            "not exporting a catalogue that fails `ungebus schemas check`:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    document = registry_import(load_catalogue(directory))
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    click.echo(f"wrote {len(document['schemas'])} schema versions to {out}")


@click.command("generate")
@click.option("--seed", type=int, required=True, help="Same seed, byte-identical output.")
@click.option("--count", type=click.IntRange(min=1), required=True, help="Payloads in total.")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for <kind>.jsonl files and manifest.json.",
)
@click.option(
    "--invalid-share",
    type=click.FloatRange(0.0, 1.0),
    default=0.1,
    show_default=True,
    help="Share of payloads made invalid on purpose (each on one named field).",
)
@click.option(
    "--reference-date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=DEFAULT_REFERENCE_DATE.isoformat(),
    show_default=True,
    help="The 'today' event dates are drawn back from.",
)
def generate(
    seed: int, count: int, out: Path, invalid_share: float, reference_date: dt.datetime
) -> None:
    """Write synthetic partner JSON payloads (never real people) for every partner kind."""
    batch = generate_payloads(
        seed=seed, count=count, invalid_share=invalid_share, reference_date=reference_date.date()
    )
    manifest = write_payloads(batch, out)
    click.echo(
        f"wrote {count} payloads ({len(manifest['invalid'])} invalid) for "
        f"{len(manifest['files'])} partner kinds to {out}"
    )


@click.group()
def _main() -> None:
    """Stand-alone entry for ``python -m schemas.cli``."""


_main.add_command(schemas_group)
_main.add_command(generate)

if __name__ == "__main__":
    _main()
