"""Commands only the ``admin`` principal may run: refused before anything is read."""

from __future__ import annotations

import click

from bus.acls.matrix import ADMIN
from bus.settings import Settings


def require_admin(settings: Settings, doing: str, *, recorded: bool = False) -> None:
    """A :class:`click.ClickException` naming ``doing`` unless the settings log in as admin
    (``recorded``: the refusal says that what admin does here is recorded)."""
    if settings.kafka_principal != ADMIN:
        also = ", and is recorded" if recorded else ""
        raise click.ClickException(
            f"{doing} runs as Kafka principal {ADMIN!r} only{also}; this runs as "
            f"{settings.kafka_principal!r}. Log in as admin (on the local broker: "
            'eval "$(ungebus local env)") and run it again'
        )
