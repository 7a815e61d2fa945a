"""The local broker's security: a throwaway CA, the broker's certificate, SCRAM credentials.

Everything is created once, on the broker's first secured start, under its home (never in
git): ``<home>/security/`` holds the CA (``ca.pem``, which clients trust, and its key) and the
broker's key and certificate chain (``broker.pem``, one PEM keystore); ``<home>/credentials/``
holds one random SCRAM-SHA-512 password per principal (``<principal>.password``). Keys and
passwords are mode 0600 in 0700 folders. The CA signs one certificate only, the broker's, for
``localhost`` and ``127.0.0.1``, and is good for this machine and nothing else.

The clients' listener is ``SASL_SSL`` with SCRAM-SHA-512. The KRaft controller listener is on
loopback and takes mutual TLS only: the one certificate it accepts is the broker's own (the
single process is broker and controller in one, and talks to its controller half over that
listener). In KRaft the broker must be allowed CLUSTER_ACTION on the controller (registration,
heartbeats, fetching the metadata log); SCRAM cannot authenticate there, because the SCRAM
credentials live in that very metadata log, so the controller listener needs a mechanism of its
own, and mutual TLS with a key that never leaves the broker's home is the one that adds no
password. That listener maps the certificate's subject ``CN=ungebus-broker`` to the principal
``admin`` (``ssl.principal.mapping.rules``; any other subject is refused), so ``admin`` is the
one and only super user.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import SecretStr

from bus.acls.logins import MECHANISM, SCRAM_ITERATIONS, LoginError, store_logins
from schemas.domain import KOMMUNEKODER

ADMIN = "admin"
BROKER_CN = "ungebus-broker"
SUPER_USER = f"User:{ADMIN}"
# The controller listener's principal for the broker's own certificate, and nobody else's.
BROKER_CERTIFICATE_MAPPING = f"RULE:^CN={BROKER_CN}$/{ADMIN}/"
# The component roles' principals (issue 17's shared names); one inbox per municipality.
ROLE_PRINCIPALS = (
    "ops",
    "router",
    "tracker",
    "connector-http",
    "connector-files",
    "connector-kafka",
    "audit-store",
)
CA_DAYS = 825
PRINCIPAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def principals(partners: Iterable[str] = ()) -> tuple[str, ...]:
    """Every principal the local broker gets credentials for, admin first: the roles', each
    municipality's inbox, and ``partner-<name>`` for each of ``partners`` (the partner
    registry's names; ``ungebus run`` passes them)."""
    inboxes = tuple(f"inbox-{kommunekode}" for kommunekode in KOMMUNEKODER)
    return (ADMIN, *ROLE_PRINCIPALS, *inboxes, *(f"partner-{name}" for name in partners))


class SecurityError(RuntimeError):
    """The broker's security files are missing or unusable; the message says what to do."""


@dataclass(frozen=True)
class BrokerSecurity:
    """Where one local broker's CA, certificate and credentials live, and how to make them."""

    home: Path
    hosts: tuple[str, ...] = ("localhost",)
    """The DNS names in the broker's certificate (beside ``127.0.0.1``): how clients reach it
    (``kafka`` inside the compose network)."""

    @property
    def security_dir(self) -> Path:
        return self.home / "security"

    @property
    def credentials_dir(self) -> Path:
        return self.home / "credentials"

    @property
    def ca_cert(self) -> Path:
        """The CA certificate every client trusts (``UNGEBUS_KAFKA_SSL_CA_LOCATION``)."""
        return self.security_dir / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.security_dir / "ca.key"

    @property
    def broker_keystore(self) -> Path:
        """The broker's private key and certificate chain, one PEM file."""
        return self.security_dir / "broker.pem"

    def password_file(self, principal: str) -> Path:
        _check_principal(principal)
        return self.credentials_dir / f"{principal}.password"

    # -- creating ---------------------------------------------------------------------------
    def ensure(self, names: Iterable[str] = ()) -> None:
        """The CA, the broker's certificate and a password for admin and each of ``names``,
        each created unless it is there."""
        self.ensure_certificates()
        for principal in (ADMIN, *names):
            self.password(principal)

    def ensure_certificates(self) -> None:
        if self.ca_cert.exists() and self.broker_keystore.exists():
            return
        _private_dir(self.security_dir)
        ca_key, ca_cert = _new_ca()
        broker_key, broker_cert = _new_broker_certificate(ca_key, ca_cert, self.hosts)
        _write_private(self.ca_key, _key_pem(ca_key))
        _write_private(self.broker_keystore, _key_pem(broker_key) + _cert_pem(broker_cert))
        self.ca_cert.write_bytes(_cert_pem(ca_cert))

    def password(self, principal: str) -> SecretStr:
        """``principal``'s password, created (random, 0600) the first time it is asked for."""
        path = self.password_file(principal)
        if not path.exists():
            _private_dir(self.credentials_dir)
            _write_private(path, secrets.token_urlsafe(32).encode(), exclusive=True)
        return SecretStr(path.read_text().strip())

    def new_password(self, principal: str) -> SecretStr:
        """Replace ``principal``'s password file with a new random one (rotation)."""
        path = self.password_file(principal)
        _private_dir(self.credentials_dir)
        _write_private(path, secrets.token_urlsafe(32).encode())
        return SecretStr(path.read_text().strip())

    # -- using ------------------------------------------------------------------------------
    def client_env(self, principal: str) -> dict[str, str]:
        """The ``UNGEBUS_KAFKA_*`` variables under which a component authenticates as
        ``principal`` (the password by file: it never enters an environment)."""
        self.password(principal)
        return {
            "UNGEBUS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "UNGEBUS_KAFKA_SASL_MECHANISM": MECHANISM,
            "UNGEBUS_KAFKA_SASL_USERNAME": principal,
            "UNGEBUS_KAFKA_SASL_PASSWORD_FILE": str(self.password_file(principal)),
            "UNGEBUS_KAFKA_SSL_CA_LOCATION": str(self.ca_cert),
        }

    def server_properties(self, host: str, port: int, controller_port: int) -> str:
        """The listener and authorizer lines of a secured ``server.properties``."""
        return secured_listeners(
            {"CLIENT": (f"{host}:{port}", f"{host}:{port}")},
            f"{host}:{controller_port}",
            keystore=self.broker_keystore,
            ca=self.ca_cert,
            admin_password=self.password(ADMIN),
        )

    def format_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments that store admin's SCRAM credential (KIP-900)."""
        admin = self.password(ADMIN).get_secret_value()
        return [
            "--add-scram",
            f"{MECHANISM}=[name={ADMIN},password={admin},iterations={SCRAM_ITERATIONS}]",
        ]


def upsert_credentials(
    admin_config: dict[str, str], security: BrokerSecurity, names: Iterable[str] | None = None
) -> None:
    """Store the SCRAM credential of ``names`` (default: every principal but admin) on the
    running broker, as admin (idempotent: the same password again changes nothing a client
    sees)."""
    wanted = names if names is not None else principals()[1:]
    try:
        store_logins(admin_config, {name: security.password(name) for name in wanted})
    except LoginError as exc:
        raise SecurityError(str(exc)) from exc


def _check_principal(principal: str) -> None:
    if not principal or not set(principal) <= PRINCIPAL_CHARS:
        raise SecurityError(
            f"{principal!r} is not a principal name (lower-case letters, digits, '-', '_', '.')"
        )


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


def _write_private(path: Path, content: bytes, *, exclusive: bool = False) -> None:
    """Write ``content`` to ``path`` with mode 0600 from the start (never readable by others,
    not even for a moment); with ``exclusive``, a file another process made first wins."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(content)
    try:
        if exclusive:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _new_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ungebus local"),
            x509.NameAttribute(NameOID.COMMON_NAME, "ungebus local broker CA"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _new_broker_certificate(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, hosts: Iterable[str]
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_CN)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    *(x509.DNSName(host) for host in hosts),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            # Server for its listeners, client towards its own controller listener.
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def secured_listeners(
    clients: dict[str, tuple[str, str]],
    controller: str,
    *,
    keystore: Path | str,
    ca: Path | str,
    admin_password: SecretStr,
) -> str:
    """The listener and authorizer lines of a secured single-node ``server.properties``:
    each of ``clients`` (name -> (bind, advertised) host:port) SASL_SSL + SCRAM-SHA-512, the
    first one also the inter-broker listener; the controller listener on ``controller``
    (loopback) with mutual TLS, the broker's certificate mapped to admin, the only super user."""
    tls = [
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={keystore}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={ca}",
    ]
    login = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN}" password="{admin_password.get_secret_value()}";'
    )
    per_client: list[str] = []
    for name in clients:
        prefix = f"listener.name.{name.lower()}."
        per_client += [f"{prefix}sasl.enabled.mechanisms={MECHANISM}"]
        per_client += [f"{prefix}{MECHANISM.lower()}.sasl.jaas.config={login}"]
        per_client += [prefix + line for line in tls]
    binds = ",".join(f"{name}://{bind}" for name, (bind, _) in clients.items())
    advertised = ",".join(f"{name}://{ad}" for name, (_, ad) in clients.items())
    protocols = ",".join(f"{name}:SASL_SSL" for name in clients)
    return "\n".join(
        [
            "# Secured (deploy/local/security.py): clients SASL_SSL + SCRAM-SHA-512,",
            "# the controller on loopback with mutual TLS (the broker's own certificate).",
            f"listeners={binds},CONTROLLER://{controller}",
            f"advertised.listeners={advertised}",
            "controller.listener.names=CONTROLLER",
            f"listener.security.protocol.map={protocols},CONTROLLER:SSL",
            # One broker: its inter-broker traffic goes to itself, over the clients' listener,
            # as admin (the file is readable by the broker's owner only).
            f"inter.broker.listener.name={next(iter(clients))}",
            f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
            f"sasl.enabled.mechanisms={MECHANISM}",
            *per_client,
            *[f"listener.name.controller.{line}" for line in tls],
            "listener.name.controller.ssl.client.auth=required",
            f"listener.name.controller.ssl.principal.mapping.rules={BROKER_CERTIFICATE_MAPPING}",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users={SUPER_USER}",
            "",
        ]
    )
