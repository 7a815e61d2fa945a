"""``make bench``: every benchmark on one throwaway local broker, in one run.

The broker is secured as the local one is (SASL_SSL + SCRAM-SHA-512, ACLs): the bench's own
clients log in as admin, the router as ``router`` under the ACL matrix (``bus.acls``). What
the security costs is measured after it, on two fresh brokers in turn, secured and plaintext
(``bench/security_bench.py``). Each figure is reported beside a raw confluent-kafka baseline
measured on the same broker in the same run, as a ratio; results go to ``bench/results.json``
and a table on stdout (paste it into the README). Benchmarks, not tests: nothing here
asserts a speed.
``python -m bench audit`` runs only the audit store's query (no broker needed);
``python -m bench replay`` only the replay bench (on a broker of its own).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import audit_bench
from bus.ports import free_ports
from bus.settings import PROJECT_ROOT
from deploy.local.broker import LocalKafka
from deploy.local.security import ADMIN

RESULTS = PROJECT_ROOT / "bench" / "results.json"


def table(results: dict[str, Any]) -> str:
    codec, ingest, router = results["codec"], results["ingest"], results["router"]
    raw = router.get("raw_latency_at_half_load") or {"p50_ms": float("nan"), "p99_ms": 1.0}
    latency, decide, recovery = (
        router["latency_at_half_load"],
        router["decide_per_s"],
        router["consent_recovery"],
    )
    rules = next(k for k in decide if k != "1000_rules")
    rows = [
        ("codec: encode / decode a dropout notice", f"{codec['encode_per_s']:,.0f} / "
         f"{codec['decode_per_s']:,.0f} records/s", "—"),
        *([] if "seal_unseal_per_s" not in codec else [(
            "sealing: seal + unseal a dropout notice with the person's data key",
            f"{codec['seal_unseal_per_s']:,.0f} records/s "
            f"({1e6 / codec['seal_unseal_per_s']:.1f} µs)",
            f"{codec['seal_unseal_to_encode']:.2f} x the cost of encoding it; "
            f"{codec['bytes_on_wire']:.0f} → {codec['sealed_bytes_on_wire']:.0f} bytes")]),
        ("HTTP ingestion, 202 after Kafka ack", f"{ingest['http_events_per_s']:,.0f} events/s",
         f"{ingest['http_to_bare_ratio']:.3f} of a bare producer "
         f"({ingest['bare_producer_records_per_s']:,.0f}/s)"),
        ("router throughput (tracing on)", f"{router['router_events_per_s']:,.0f} events/s",
         f"{router['ratio']:.3f} of a raw pass-through R_ref ({router['raw_events_per_s']:,.0f}"
         f"/s), {router['ratio_to_fan']:.3f} of R_fan; " + _busy(router.get("router_cpu", {}))),
        ("R_fan: the raw pass-through with the router's writes (`bench/fan_relay.py`)",
         f"{router['fan_events_per_s']:,.0f} events/s",
         f"{router['fan_to_raw']:.3f} of R_ref; writes per event: " + ", ".join(
             f"{kind} {n:.2f}" for kind, n in router["fan_writes_per_event"].items())),
        ("the router's own work alone: decode, decide, encode, in one process (no Kafka)",
         f"{router['logic_events_per_s']:,.0f} events/s",
         f"{router['logic_ratio']:.3f} of the pass-through: the most one router process "
         "could do here"),
        ("router throughput, telemetry off (no spans, no metrics)",
         f"{router['router_untraced_events_per_s']:,.0f} events/s",
         f"{router['untraced_ratio_to_fan']:.3f} of R_fan; tracing on / off: "
         f"{router['tracing_on_to_off']:.2f}; "
         + _busy(router.get("router_untraced_cpu", {}))),
        (f"latency publish → task at {latency['rate_per_s']:.0f} events/s (half load)",
         f"p50 {latency['p50_ms']:.0f} ms, p99 {latency['p99_ms']:.0f} ms",
         _busy(latency) + f", generator {latency.get('generator_cpu_pct')} %"),
        ("the raw reference at the same rate (`bench/raw_relay.py`)",
         f"p50 {raw['p50_ms']:.0f} ms, p99 {raw['p99_ms']:.0f} ms",
         f"router p99 / raw p99: {latency['p99_ms'] / raw['p99_ms']:.1f}; machine "
         f"{raw.get('machine_busy_pct')} % busy, relay {raw.get('relay_cpu_pct')} % of a core"),
        ("decide() with the shipped policy / 1,000 rules",
         f"{decide[rules]:,.0f} / {decide['1000_rules']:,.0f} decisions/s",
         f"{decide['1000_rules'] / decide[rules]:.2f}"),
        (f"router restart over {recovery['people']:,} people's consents",
         recovery.get("failed") or f"{recovery['restart_full_s']:.0f} s "
         f"(empty table: {recovery['restart_empty_s']:.0f} s; "
         f"watchdog restarts: {recovery['watchdog_restarts']})", "—"),
    ]  # fmt: skip
    if "security" in results:
        from bench.security_bench import row

        rows.insert(2, row(results["security"]))
    if "replay" in results:
        from bench.replay_bench import row as replay_row

        rows.append(replay_row(results["replay"]))
    if "audit_query" in results:
        rows.append(audit_bench.row(results["audit_query"]))
    lines = ["| measure | result | ratio / baseline |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def _busy(cpu: dict[str, Any]) -> str:
    return (
        f"machine {cpu.get('machine_busy_pct')} % busy (all cores), "
        f"router {cpu.get('router_cpu_pct')} % of a core"
    )


def audit_only(decisions: int) -> None:
    """``python -m bench audit``: the audit query alone (no broker), merged into the results."""
    with tempfile.TemporaryDirectory(prefix="ungebus-bench-audit-") as tmp:
        print(f"bench: audit query over {decisions:,} decisions")
        figures = audit_bench.run(Path(tmp), decisions=decisions)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["audit_query"] = {**figures, "date": dt.datetime.now(dt.UTC).isoformat("T", "seconds")}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["audit_query"], indent=2))
    print("| {} | {} | {} |".format(*audit_bench.row(figures)))
    print(f"bench: results in {RESULTS}")


def replay_only(events: int) -> None:
    """``python -m bench replay``: the replay bench alone, on a throwaway secured broker,
    merged into the results."""
    from bench import replay_bench

    with tempfile.TemporaryDirectory(prefix="ungebus-bench-replay-") as tmp:
        port, controller = free_ports(2)
        broker = LocalKafka(home=Path(tmp) / "kafka", port=port, controller_port=controller,
                            heap="1g")  # fmt: skip
        print(f"bench: replay, on a throwaway secured Kafka broker on {broker.bootstrap_servers}")
        broker.up(echo=lambda _m: None)
        try:
            with environment(broker.client_env(ADMIN)):
                figures = replay_bench.run(broker.bootstrap_servers, count=events, work=Path(tmp))
        finally:
            broker.down(echo=lambda _m: None)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["replay"] = {**figures, "date": dt.datetime.now(dt.UTC).isoformat("T", "seconds")}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["replay"], indent=2))
    print("| {} | {} | {} |".format(*replay_bench.row(figures)))
    print(f"bench: results in {RESULTS}")


@contextlib.contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    """``variables`` in this process's environment (so every ``Settings`` built and every
    process started logs in), as they were afterwards."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main() -> None:
    from bench import codec_bench, ingest_bench, replay_bench, router_bench, security_bench

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "part",
        nargs="?",
        choices=("all", "audit", "replay"),
        default="all",
        help="audit, replay: only that",
    )
    parser.add_argument("--events", type=int, default=20_000, help="router throughput events")
    parser.add_argument("--people", type=int, default=1_000_000, help="consent table size")
    parser.add_argument("--http-events", type=int, default=3000)
    parser.add_argument("--decisions", type=int, default=1_000_000, help="audit store size")
    args = parser.parse_args()
    if args.part == "audit":
        audit_only(args.decisions)
        return
    if args.part == "replay":
        replay_only(args.events)
        return
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ungebus-bench-") as tmp:
        print("bench: audit query (no broker)")
        audit = audit_bench.run(Path(tmp) / "audit", decisions=args.decisions)
        port, controller = free_ports(2)
        broker = LocalKafka(home=Path(tmp) / "kafka", port=port, controller_port=controller,
                            heap="1g")  # fmt: skip
        print(f"bench: starting a throwaway secured Kafka broker on {broker.bootstrap_servers}")
        broker.up(echo=lambda _m: None)
        try:
            with environment(broker.client_env(ADMIN)):
                print("bench: codec")
                results: dict[str, Any] = {"codec": codec_bench.run(), "audit_query": audit}
                print("bench: HTTP ingestion")
                results["ingest"] = ingest_bench.run(
                    broker.bootstrap_servers, count=args.http_events
                )
                print("bench: router (as the router principal, under the ACL matrix)")
                results["router"] = router_bench.run(
                    broker.bootstrap_servers, count=args.events, people=args.people,
                    work=Path(tmp) / "router", router_login=broker.client_env("router"),
                )  # fmt: skip
                print("bench: replay (the real one and the policy preview)")
                results["replay"] = replay_bench.run(
                    broker.bootstrap_servers, count=args.events, work=Path(tmp)
                )
        finally:
            broker.down(echo=lambda _m: None)
        print("bench: TLS + SASL/SCRAM vs plaintext (a broker of each, in turn)")
        results["security"] = security_bench.run(Path(tmp) / "security", count=args.events)
    results["meta"] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "kafka": broker.kafka_version(),
        "wall_s": round(time.monotonic() - started, 1),
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"bench: {results['meta']['wall_s']} s; results in {RESULTS}")


if __name__ == "__main__":
    main()
