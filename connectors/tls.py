"""Mutual TLS for partners who authenticate with a client certificate.

uvicorn does not pass the peer certificate to the app, so the HTTP protocol is subclassed to
put the certificate's SHA-256 fingerprint into the connection's ASGI state
(``scope["state"][CLIENT_CERT_STATE]``); the partners file maps fingerprints to partners.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

CLIENT_CERT_STATE = "ungebus.client_cert_sha256"


def certificate_fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, as the partners file's ``cert_sha256`` holds it."""
    return hashlib.sha256(der).hexdigest()


class ClientCertProtocol(H11Protocol):
    """HTTP/1.1 (h11) that records the verified client certificate of a TLS connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der:
            # A copy per connection: each request's scope["state"] is copied from it.
            self.app_state = {**self.app_state, CLIENT_CERT_STATE: certificate_fingerprint(der)}


def ssl_options(certfile: Any | None, keyfile: Any | None, client_ca: Any | None) -> dict[str, Any]:
    """uvicorn's ssl_* keyword arguments: TLS if a certificate is set, mTLS if a CA is too.

    Client certificates are optional at the TLS layer (``CERT_OPTIONAL``) so partners with a
    bearer token can use the same port; a certificate that is sent must verify against the CA.
    """
    if certfile is None:
        return {}
    options: dict[str, Any] = {"ssl_certfile": str(certfile)}
    if keyfile is not None:
        options["ssl_keyfile"] = str(keyfile)
    if client_ca is not None:
        options["ssl_ca_certs"] = str(client_ca)
        options["ssl_cert_reqs"] = ssl.CERT_OPTIONAL
    return options
