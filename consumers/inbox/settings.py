"""The inbox's settings: the shared ``Settings`` plus what only the inbox needs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from bus import services
from bus.settings import Settings
from schemas import KOMMUNEKODER, UNITS


class InboxSettings(Settings):
    """``UNGEBUS_INBOX_*`` variables; one inbox serves one municipality's units."""

    inbox_kommunekode: str = Field(default="161", description="the municipality served")
    inbox_units: Annotated[tuple[str, ...], NoDecode] = Field(
        default=UNITS, description="its units whose tasks this inbox holds (comma-separated)"
    )
    inbox_database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<var_dir>/inbox.db"
    )
    inbox_users_file: Path | None = Field(
        default=None, description="caseworker accounts (JSON); default <var_dir>/inbox-users.json"
    )
    inbox_host: str = "127.0.0.1"
    inbox_port: int = Field(default=services.INBOX_PORT, ge=0, le=65535)
    inbox_session_secret: SecretStr | None = Field(
        default=None, description="signs session cookies; generated into var_dir when unset"
    )
    inbox_secure_cookies: bool = Field(default=False, description="set behind HTTPS")
    inbox_session_hours: float = Field(default=8.0, gt=0)
    inbox_group_id: str | None = Field(default=None, description="default inbox.<kommunekode>")
    inbox_ack_timeout_s: float = Field(default=15.0, gt=0)
    inbox_timezone: str = "Europe/Copenhagen"
    inbox_sign_in_failures_per_account: int = Field(
        default=5, ge=1, description="failed sign-ins an account may have within the window"
    )
    inbox_sign_in_failures_per_address: int = Field(
        default=30,
        ge=1,
        description="failed sign-ins from one client address within the window (an office's "
        "caseworkers may share one address)",
    )
    inbox_sign_in_window_s: float = Field(
        default=900.0, gt=0, description="the sliding window of the sign-in limits (seconds)"
    )
    inbox_purge_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description="how often closed tasks past their retention are purged (seconds; the "
        "retention itself is the table's, streams/retention.toml)",
    )
    inbox_demo_account: bool = Field(
        default=True, description="create a demo caseworker when there is no users file"
    )

    @field_validator("inbox_units", mode="before")
    @classmethod
    def _split_units(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("inbox_units")
    @classmethod
    def _known_units(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(UNITS))
        if unknown or not value:
            raise ValueError(f"units must be some of {', '.join(UNITS)}; got {value!r}")
        return value

    @field_validator("inbox_kommunekode")
    @classmethod
    def _known_kommunekode(cls, value: str) -> str:
        if value not in KOMMUNEKODER:
            raise ValueError(f"kommunekode {value!r} is not a municipality on this bus")
        return value

    @property
    def database_url(self) -> str:
        return self.inbox_database_url or f"sqlite:///{self.var_dir / services.INBOX_DATABASE}"

    @property
    def users_file(self) -> Path:
        return self.inbox_users_file or self.var_dir / services.INBOX_USERS_FILE

    @property
    def group_id(self) -> str:
        return self.inbox_group_id or f"{self.topic_prefix}inbox.{self.inbox_kommunekode}"

    @property
    def task_topics(self) -> dict[str, str]:
        """tasks topic -> unit, for the units served."""
        return {self.topics.tasks(self.inbox_kommunekode, u): u for u in self.inbox_units}

    @property
    def acks_topic(self) -> str:
        """task-acks.<kommunekode>: where this municipality's take-overs are written (the only
        take-over topic its inbox may write)."""
        return self.topics.task_acks_of(self.inbox_kommunekode)

    @property
    def escalation_topics(self) -> dict[str, str]:
        """escalations topic -> unit, for the units served."""
        return {self.topics.escalations(self.inbox_kommunekode, u): u for u in self.inbox_units}
