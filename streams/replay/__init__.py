"""``ungebus replay``: history routed again, as a policy preview (``--dry-run``) or for real.

- ``history``: the inbound topic read between two offsets a partition at a time, and the task
  ids already on the task topics;
- ``events``: consent state as a fold over the whole topic, then the events since a date, the
  records the router would dead-letter or refuse left out;
- ``compare``: two decisions of one event, and what differs (pure);
- ``report``: the preview's summary (text) and its CSV, without personal data;
- ``reroute``: the new routes as the router's own task and audit records;
- ``cli``: the command.
"""
