"""Dead letters an operator can act on: ``ungebus deadletters list|show|retry``.

An operator's consumer of the ``deadletter`` topic: it reads the topic from its start without
a consumer group's commits (assigned partitions, nothing committed), counts and lists what
failed and where, and never prints the originals' personal fields. Revealing an original
and retrying one run as ``admin`` and are recorded on ``operations`` (who, when, which
letter). Nothing is deleted from any log.

- :mod:`~consumers.deadletters.letters`: a dead letter as an operator sees it, filters, counts
  (pure).
- :mod:`~consumers.deadletters.reading`: reading the topics (confluent-kafka, assign only).
- :mod:`~consumers.deadletters.actions`: the record of a reveal or a retry on ``operations``.
- :mod:`~consumers.deadletters.retry`: what a retry re-publishes, or why it cannot.
- :mod:`~consumers.deadletters.render`: the text an operator reads.
- :mod:`~consumers.deadletters.cli`: the commands.
"""
