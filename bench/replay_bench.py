"""Replay benchmark: ``ungebus replay`` over N preloaded synthetic events, beside the raw
confluent-kafka pass-through on the same topic, broker and run.

- raw: the router bench's reference (``router_bench.raw_pass_through``): consume the events
  in batches and produce each record's bytes twice (a task and an audit record), acks awaited.
- preview: ``--dry-run`` with a candidate (the shipped policy with one more field for a unit):
  the whole topic read for consents, every event read again and decided under both policies,
  the CSV written; nothing produced.
- replay: the real replay under the shipped policy: the task topics read for the ids already
  there (none), every event decided and its tasks and audit decision written (acks=all).

Both replays run in this process through ``streams.replay.run``, as the command does, under
the bench's login (admin: the principal the real replay needs, see README). Events/s count
the events decided, over the whole run (both reads of the topic included). Not a test.
"""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path
from typing import Any

from bench.router_bench import raw_pass_through
from bench.router_load import produce_all, synthetic_events, utc_now, wire
from bus.demo_partners import load_or_create_partners
from bus.settings import Settings
from bus.topics import delete_topics, ensure_topics
from streams.replay.run import Replay, preview, reroute
from streams.routing.policy import DEFAULT_POLICY, load_policy, parse_policy
from streams.routing.senders import Senders


def candidate_policy() -> Any:
    """The shipped policy with one more field for the youth unit on late starters' dropouts."""
    import tomllib

    raw = tomllib.loads(DEFAULT_POLICY.read_text(encoding="utf-8"))
    for rule in raw["rules"]:
        if rule["id"] == "dropout.late_starter":
            rule["fields"] = [*rule["fields"], "reason_category"]
    raw["version"] = f"{raw['version']}-candidate"
    return parse_policy(raw, origin="bench candidate")


def run(bootstrap: str, count: int = 20_000, work: Path | None = None) -> dict[str, Any]:
    settings = Settings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=f"bench-replay-{uuid.uuid4().hex[:6]}.",
        var_dir=(work or Path("var/bench")) / "replay",
    )
    ensure_topics(settings.kafka_config(), settings.topics.catalogue())
    try:
        return _measure(settings, count)
    finally:
        delete_topics(settings.kafka_config(), settings.topic_prefix)


def _measure(settings: Settings, count: int) -> dict[str, Any]:
    policy, candidate = load_policy(), candidate_policy()
    registry, _tokens = load_or_create_partners(settings)
    since = utc_now()
    _step(f"generating and preloading {count} events")
    produce_all(settings, wire(settings, synthetic_events(count, seed=31)))
    results: dict[str, Any] = {"events": count}
    _step("raw confluent-kafka pass-through")
    results["raw_events_per_s"] = raw_pass_through(settings, count)
    replay = Replay(settings, Senders.from_registry(registry), since, utc_now())

    _step("policy preview (--dry-run, a candidate with one more field)")
    started = time.monotonic()
    report, tally = preview(replay, policy, candidate, io.StringIO())
    took = time.monotonic() - started
    _all_decided(tally.decided, count, tally.left_out)
    results["preview_events_per_s"] = tally.decided / took
    results["preview_changed_events"] = report.changed_events

    _step("real replay (tasks and audit decisions written, acks=all)")
    started = time.monotonic()
    done, tally = reroute(replay, policy)
    took = time.monotonic() - started
    results["replay_events_per_s"] = tally.decided / took
    results["replay_new_tasks"] = done.new_tasks
    results["decided"] = tally.decided
    results["replay_ratio"] = results["replay_events_per_s"] / results["raw_events_per_s"]
    results["preview_ratio"] = results["preview_events_per_s"] / results["raw_events_per_s"]
    return results


def _all_decided(decided: int, count: int, left_out: Any) -> None:
    """A replay that leaves events out would measure less than it says."""
    if decided != count:
        raise ValueError(f"{count - decided} of {count} bench events were not decided: {left_out}")


def row(figures: dict[str, Any]) -> tuple[str, str, str]:
    """The bench table's row (``bench.__main__.table``)."""
    return (
        f"replay of {figures['decided']:,} events: real (tasks written) / preview (--dry-run)",
        f"{figures['replay_events_per_s']:,.0f} / {figures['preview_events_per_s']:,.0f} events/s",
        f"{figures['replay_ratio']:.3f} / {figures['preview_ratio']:.3f} of a raw pass-through "
        f"({figures['raw_events_per_s']:,.0f}/s)",
    )


def _step(text: str) -> None:
    print(f"  replay bench: {text}...", flush=True)
