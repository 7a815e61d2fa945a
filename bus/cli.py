"""The ``ungebus`` command: one entry point for operators, partners' IT staff and developers.

Component commands are imported lazily, so ``ungebus local up`` does not pay for faust.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# name -> "module:attribute" of a click command; components register here, never each other.
_COMMANDS: dict[str, str] = {
    "local": "deploy.local.cli:local",
    "run": "deploy.local.run:run",
    "demo": "deploy.local.demo:demo",
    "streams": "streams.cli:streams",
    "explain": "streams.routing.explain:explain",
    "audit": "consumers.audit.cli:audit",
    "audit-store": "consumers.audit.cli:audit_store",
    "schemas": "schemas.cli:schemas_group",
    "generate": "schemas.cli:generate",
    "connect": "connectors.cli:connect",
    "inbox": "consumers.cli:inbox",
    "topics": "bus.topics_cli:topics",
    "acl": "bus.acls.cli:acl",
    "deploy": "deploy.compose:deploy",
    "trace": "bus.telemetry.trace_cli:trace",
    "deadletters": "consumers.deadletters.cli:deadletters",
    "replay": "streams.replay.cli:replay",
    "erase": "bus.erasure.cli:erase",
    "erase-verify": "bus.erasure.cli:erase_verify",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS:
            module_name, attr = _COMMANDS[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module_name), attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup)
@click.version_option(package_name="ungebus")
def cli() -> None:
    """ungebus: the youth effort's event bus for Glostrup and Vestegnen."""


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="ungebus")
