"""The audit store: every routing decision, kept by person, for ``ungebus audit``.

A consumer of ``audit.routing`` stores each decision once (its deterministic id is the primary
key; offsets are committed after the database commit), indexed by pseudonym and time, so "who
received what about this person, and why" is one indexed query instead of a partition scan.
"""
