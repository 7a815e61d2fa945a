"""Running the partner API under uvicorn: in the foreground (the CLI) or in a thread (tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from bus.waiting import WaitTimeout, wait_until
from connectors.settings import ConnectorSettings
from connectors.tls import ClientCertProtocol, ssl_options


def uvicorn_config(
    app: FastAPI, settings: ConnectorSettings, *, port: int | None = None, **overrides: Any
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port if port is None else port,
        http=ClientCertProtocol,
        lifespan="on",
        **ssl_options(settings.tls_certfile, settings.tls_keyfile, settings.tls_client_ca),
        **overrides,
    )


@contextmanager
def serving(
    app: FastAPI, settings: ConnectorSettings, *, port: int = 0, timeout_s: float = 30.0
) -> Iterator[str]:
    """Serve ``app`` on a real uvicorn in a background thread; yield its base URL."""
    config = uvicorn_config(app, settings, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()

    def alive() -> None:
        if not thread.is_alive():
            raise RuntimeError("the partner API did not start (see the log above)")

    try:
        wait_until(lambda: server.started, timeout_s, "the partner API", every_s=0.02, check=alive)
    except WaitTimeout as exc:
        raise RuntimeError(f"the partner API did not start: {exc}") from exc
    bound = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if settings.tls_certfile else "http"
    try:
        yield f"{scheme}://{settings.http_host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout_s)
