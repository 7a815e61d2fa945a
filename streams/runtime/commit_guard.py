"""Never commit past a record that was read but not handled.

faust commits, per partition, the first run of consecutive acknowledged offsets. It checks
that this run starts where the last commit ended only when that commit was above offset 0,
and it lets a run start one offset late; and its reader drops a record it has re-read below
the offset it believes it read last. A record read but never handed to the agent can so be
committed past while later ones are acknowledged, and it is never read again: lost. The
SIGKILL test failed that way twice in CI (a few of 3000 tasks missing, the router idle).

The guard's rule, per partition: the *head* is where the next commit must start, the later of
the partition's committed offset and the first offset read since the consumer last sought
(Kafka gives the first record that exists at or after the sought offset, so records deleted
by retention are no hole). A commit may go ahead only if the lowest acknowledged offset is at
or below the head. A record that was read and then dropped keeps the partition's commit where
it is; the router's watchdog restarts a partition that stays behind (``streams.runtime.liveness``),
and the restart reads the record again.
"""

from __future__ import annotations


def commit_head(first_read: int | None, committed: int | None) -> int | None:
    """Where the next commit must start: None while nothing has been read since a seek."""
    if first_read is None:
        return None
    return max(first_read, committed or 0)


def may_commit(head: int | None, lowest_acked: int) -> bool:
    """Whether acknowledged offsets from ``lowest_acked`` on may be committed."""
    return head is not None and lowest_acked <= head
