"""The contracts of ungebus: Avro schemas, pinned ids, the wire codec, partner edge models."""
