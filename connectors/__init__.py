"""Partner-facing ingestion: the HTTP API, the file drop, and the rules direct publishers follow.

``ingest.prepare`` is the one place a partner payload becomes a Kafka record (validated,
source checked against the partner, stable event id, wire format, CloudEvents and trace
headers, keyed by the subject pseudonym); ``http_api`` and ``files`` are thin shells around it
and ``publisher`` answers only once Kafka acknowledged. See ``connectors/README.md``.
"""
