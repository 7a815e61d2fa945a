"""One frozen settings object, loaded once at each entry point and passed down.

Values come from environment variables with the ``UNGEBUS_`` prefix (or a ``.env`` file);
``KAFKA_BOOTSTRAP_SERVERS`` is honoured as the standard name for the broker address.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bus import services
from bus.limits import PRODUCER_MESSAGE_MAX_BYTES, RecordLimits, nesting_problems
from schemas import DEFAULT_MAX_SIZE

if TYPE_CHECKING:
    from bus.topics import Topics

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="UNGEBUS_", env_file=".env", extra="ignore", frozen=True
    )

    kafka_bootstrap_servers: str = Field(
        default=f"127.0.0.1:{services.LOCAL_KAFKA_PORT}",
        validation_alias=AliasChoices("UNGEBUS_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers, host:port[,host:port]",
    )
    # How this process authenticates: SASL_SSL with SCRAM-SHA-512 on the secured local broker
    # (``ungebus run`` gives each component its principal, its password file and the CA);
    # the password from a file (mode 0600) or the environment, never logged.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_ca_location: Path | None = Field(
        default=None, description="PEM file of the CA(s) the broker's certificate is checked with"
    )

    pseudonym_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key for subject pseudonyms; set in production, generated locally",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description=(
            "wraps the per-person data keys (bus.crypto): 32 bytes as 64 hex digits; set in "
            "production, generated locally"
        ),
    )
    var_dir: Path = PROJECT_ROOT / "var"
    # Read by the connectors (who may send what) and by the router (it checks every record's
    # sender against it too).
    partners_file: Path | None = Field(
        default=None,
        description="TOML file of partners; unset: demo partners generated in var/ at first start",
    )
    replication_factor: int = Field(default=1, ge=1, description="for topics ungebus creates")
    # How long a dead worker keeps its partitions before the group hands them to another.
    consumer_session_timeout_s: float = Field(default=30.0, ge=6)
    # Static membership (KIP-345): the long-running components (inbox, Kafka gateway, router,
    # tracker) join their consumer groups under a stable name, ``<component>@<instance>``, so
    # a restarted component takes its predecessor's place at once however that one ended
    # (SIGKILL, a crash, a broker restarted with the membership on disk), where a new dynamic
    # member waits until the old one's session has expired (30-45 s). A static member does
    # not leave its group when it stops: its partitions wait for its successor (or for the
    # session to expire). Two processes of one component in one group need two instance
    # names: the newer fences the older.
    consumer_static_membership: bool = True
    consumer_instance: str | None = Field(
        default=None, description="this process's stable name in its groups; default: host name"
    )
    topic_prefix: str = Field(default="", description="namespace for every topic name")
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Prometheus scrape port; unset: no endpoint"
    )
    metrics_host: str = Field(default="127.0.0.1", description="address the metrics port binds")
    # The local span files (var/traces, when no OTLP endpoint is set): each process's file is
    # rotated at this size (one previous file kept), files idle this long removed at start-up.
    traces_max_mb: int = Field(default=64, ge=1)
    traces_keep_days: float = Field(default=7.0, gt=0)
    # Record sizes (``bus.limits``): the largest record decoded, and librdkafka's
    # message.max.bytes for every producer; checked against each other here and against the
    # topics' max.message.bytes when a component starts.
    max_record_bytes: int = Field(default=DEFAULT_MAX_SIZE, ge=1024)
    producer_message_max_bytes: int = Field(
        default=PRODUCER_MESSAGE_MAX_BYTES, ge=64 * 1024, le=1_000_000_000
    )

    @model_validator(mode="after")
    def _limits_nest(self) -> Settings:
        problems = nesting_problems(self.max_record_bytes, self.producer_message_max_bytes)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def record_limits(self) -> RecordLimits:
        return RecordLimits(self.producer_message_max_bytes, self.max_record_bytes)

    def kafka_config(self, **overrides: Any) -> dict[str, Any]:
        """The librdkafka configuration shared by every confluent-kafka client."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            password = self.kafka_sasl_secret()
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
            conf["sasl.username"] = self.kafka_sasl_username or ""
            conf["sasl.password"] = password.get_secret_value() if password else ""
        if self.kafka_ssl_ca_location is not None:
            conf["ssl.ca.location"] = str(self.kafka_ssl_ca_location)
        conf.update(overrides)
        return conf

    @property
    def kafka_principal(self) -> str:
        """Who this process is to Kafka, for messages: the SASL user, or ``ANONYMOUS``."""
        if self.kafka_sasl_mechanism and self.kafka_sasl_username:
            return self.kafka_sasl_username
        return "ANONYMOUS"

    def kafka_sasl_secret(self) -> SecretStr | None:
        """The SASL password: ``kafka_sasl_password``, else the first line of its file."""
        if self.kafka_sasl_password is not None:
            return self.kafka_sasl_password
        if self.kafka_sasl_password_file is None:
            return None
        try:
            return SecretStr(self.kafka_sasl_password_file.read_text().strip())
        except OSError as exc:
            raise ValueError(
                f"cannot read the Kafka password file of {self.kafka_principal!r} "
                f"({self.kafka_sasl_password_file}): {exc.strerror}"
            ) from None

    def producer_config(self, **overrides: Any) -> dict[str, Any]:
        """Idempotent, acks=all: a record is acknowledged only once every in-sync replica has it."""
        return self.kafka_config(
            **{
                "enable.idempotence": True,
                "acks": "all",
                # The Java client's partitioner, also aiokafka's (faust): one key, one partition,
                # whichever client wrote it; the router's tables rely on it.
                "partitioner": "murmur2_random",
                "linger.ms": 5,
                "compression.type": "lz4",
                # Explicit, because every record is checked against it before it is produced.
                "message.max.bytes": self.producer_message_max_bytes,
                **overrides,
            }
        )

    def consumer_config(self, group_id: str, **overrides: Any) -> dict[str, Any]:
        """Manual commits only: an offset is committed after its record has been handled."""
        return self.kafka_config(
            **{
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                **overrides,
            }
        )

    def group_instance_id(self, component: str) -> str | None:
        """``component``'s stable name in its consumer group, or None for dynamic membership."""
        if not self.consumer_static_membership:
            return None
        return f"{component}@{self.consumer_instance or socket.gethostname()}"

    def member_config(self, group_id: str, component: str, **overrides: Any) -> dict[str, Any]:
        """:meth:`consumer_config` for a long-running component: static membership (see
        ``consumer_static_membership``) and the bus's session timeout."""
        member: dict[str, Any] = {
            "session.timeout.ms": round(self.consumer_session_timeout_s * 1000),
        }
        if (instance := self.group_instance_id(component)) is not None:
            member["group.instance.id"] = instance
        return self.consumer_config(group_id, **{**member, **overrides})

    def resolved_partners_file(self) -> Path:
        return self.partners_file or self.var_dir / services.PARTNERS_FILE

    @property
    def traces_dir(self) -> Path:
        """Where spans go as JSON lines when no OTLP endpoint is set (``ungebus trace``)."""
        return self.var_dir / services.TRACES_DIR

    @property
    def topics(self) -> Topics:
        # Imported here: the topic catalogue pulls in confluent-kafka's admin client, which a
        # quick command such as ``ungebus audit`` never needs (a fifth of a second).
        from bus.topics import Topics

        return Topics(self.topic_prefix)

    def pseudonym_key(self) -> bytes:
        """The HMAC key: from settings, else a random per-machine key kept in ``var/``.

        The local key is created once (mode 0600) so every process on this machine agrees on
        pseudonyms; it never leaves the machine and is never committed.
        """
        if self.pseudonym_secret is not None:
            return self.pseudonym_secret.get_secret_value().encode()
        path = self.var_dir / services.PSEUDONYM_KEY
        if not path.exists():
            _create_once(path, secrets.token_hex(32))
        return path.read_text().strip().encode()

    def master_key_bytes(self) -> bytes:
        """The master key that wraps every data key: from settings, else a random per-machine
        key kept in ``var/`` (created once, mode 0600, like the pseudonym key)."""
        if self.master_key is not None:
            text = self.master_key.get_secret_value().strip()
        else:
            path = self.var_dir / services.MASTER_KEY
            if not path.exists():
                _create_once(path, secrets.token_hex(32))
            text = path.read_text().strip()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ValueError("UNGEBUS_MASTER_KEY must be 32 bytes written as 64 hex digits")
        return key


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)


def _create_once(path: Path, content: str) -> None:
    """Create ``path`` with ``content`` unless another process got there first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(content)
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
