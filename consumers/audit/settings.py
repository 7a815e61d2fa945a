"""The audit store's settings: the shared ``Settings`` plus what only the audit store needs."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bus import services
from bus.settings import Settings


class AuditSettings(Settings):
    """``UNGEBUS_AUDIT_*`` variables."""

    audit_database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<var_dir>/audit.db"
    )
    audit_group_id: str | None = Field(default=None, description="default <prefix>audit-store")
    audit_batch_size: int = Field(default=500, ge=1, description="records per transaction")
    audit_ack_timeout_s: float = Field(default=15.0, gt=0, description="for dead letters")

    @property
    def database_url(self) -> str:
        return self.audit_database_url or f"sqlite:///{self.var_dir / services.AUDIT_DATABASE}"

    @property
    def group_id(self) -> str:
        return self.audit_group_id or f"{self.topic_prefix}audit-store"

    @property
    def ready_file(self) -> Path:
        """Written once the store is migrated and the consumer has its partitions."""
        return services.ready_file(self.var_dir, services.AUDIT_STORE.component)
