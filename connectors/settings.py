"""The connectors' own settings: the shared ``Settings`` plus what only partner ingestion needs.

Same ``UNGEBUS_`` prefix and ``.env`` file as every other component, e.g.
``UNGEBUS_HTTP_PORT=8080``, ``UNGEBUS_PARTNERS_FILE=/etc/ungebus/partners.toml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from bus import services
from bus.settings import Settings


class ConnectorSettings(Settings):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=services.CONNECTOR_HTTP_PORT, ge=0, le=65535)
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="413 above this many bytes in one request body"
    )
    ack_timeout_s: float = Field(
        default=5.0, gt=0, description="how long a request waits for Kafka before answering 503"
    )
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After of a 503")
    tls_certfile: Path | None = Field(default=None, description="server certificate (PEM)")
    tls_keyfile: Path | None = Field(default=None, description="server private key (PEM)")
    tls_client_ca: Path | None = Field(
        default=None, description="CA bundle that signs partners' client certificates (mTLS)"
    )
    file_poll_interval_s: float = Field(default=5.0, gt=0)
    file_settle_s: float = Field(
        default=2.0, ge=0, description="a dropped file is read once unchanged this long"
    )
    max_file_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)

    def connector_producer_config(self, **overrides: Any) -> dict[str, Any]:
        """The bus producer, bounded: a record not acknowledged in time fails instead of lingering.

        ``message.timeout.ms`` makes librdkafka give up on the record itself, so a partner who
        got a 503 is not surprised later by the record turning up without their retry.
        """
        timeout_ms = int(self.ack_timeout_s * 1000)
        return self.producer_config(
            **{
                "message.timeout.ms": timeout_ms,
                "request.timeout.ms": min(timeout_ms, 30_000),
                "reconnect.backoff.max.ms": 1000,
                **overrides,
            }
        )
