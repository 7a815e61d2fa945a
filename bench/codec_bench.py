"""Codec throughput for a typical dropout notice: records/s encoded and decoded, and what
sealing it with the person's data key costs (``bus.crypto``: AES-256-GCM), in the same run.

Decoding includes the guard pass over untrusted bytes, so the figure is what a consumer pays.
Sealing is measured with the keys in memory, as every component holds them (``bus.keystore``
reads the key store once and tails it): seal + unseal of one encoded record, beside encode
alone, as a ratio.
Run: ``.venv/bin/python bench/codec_bench.py [--seconds 1.5]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bus.crypto import MemoryKeyring, seal_with, unseal
from schemas import decode, encode, generate_payloads, parse_partner, to_record

KEY = b"bench-only-pseudonym-key"


def dropout_notices(count: int) -> list[dict[str, Any]]:
    """Synthetic dropout notices as the connector would publish them (v2, CPR kept)."""
    batch = generate_payloads(seed=1, count=count, invalid_share=0.0, kinds=["dropout_notice"])
    records = []
    for i, payload in enumerate(batch.payloads["dropout_notice"]):
        model = parse_partner("dropout_notice", payload, today=batch.reference_date)
        records.append(to_record(model, KEY, f"00000000-0000-4000-8000-{i:012d}")[1])
    return records


def rate(work: Callable[[int], object], n: int, seconds: float) -> float:
    """Items per second of ``work`` over about ``seconds`` (after a warm-up)."""
    work(0)
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        work(done % n)
        done += 1
    return done / elapsed


def run(seconds: float = 1.5) -> dict[str, float]:
    records = dropout_notices(200)
    wire = [encode("dropout_notice", r) for r in records]
    keyring = MemoryKeyring()
    # Each person's key as a component's keyring holds it: found by pseudonym in a dict
    # (MemoryKeyring.sealing_key scans its keys, which would measure the scan instead).
    keys = [keyring.sealing_key(r["envelope"]["subject"]["pseudonym"]) for r in records]
    sealed = [seal_with(k, w) for k, w in zip(keys, wire, strict=True)]
    encode_rate = rate(lambda i: encode("dropout_notice", records[i]), len(records), seconds)
    seal_unseal_rate = rate(
        lambda i: unseal(keyring, seal_with(keys[i], wire[i])), len(wire), seconds
    )
    return {
        "bytes_on_wire": sum(map(len, wire)) / len(wire),
        "sealed_bytes_on_wire": sum(map(len, sealed)) / len(sealed),
        "encode_per_s": encode_rate,
        "decode_per_s": rate(lambda i: decode(wire[i]), len(wire), seconds),
        "seal_unseal_per_s": seal_unseal_rate,
        # what one seal + unseal costs, in encodes of the same record (same run)
        "seal_unseal_to_encode": encode_rate / seal_unseal_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement")
    result = run(parser.parse_args().seconds)
    encode_rate, decode_rate = result["encode_per_s"], result["decode_per_s"]
    print(f"dropout_notice v2, {result['bytes_on_wire']:.0f} bytes on the wire")
    print(f"encode: {encode_rate:>10,.0f} records/s  ({1e6 / encode_rate:6.1f} µs/record)")
    print(f"decode: {decode_rate:>10,.0f} records/s  ({1e6 / decode_rate:6.1f} µs/record)")
    sealing = result["seal_unseal_per_s"]
    print(
        f"seal + unseal: {sealing:>10,.0f} records/s  ({1e6 / sealing:6.1f} µs/record, "
        f"{result['seal_unseal_to_encode']:.2f} of an encode; "
        f"{result['sealed_bytes_on_wire']:.0f} bytes sealed)"
    )


if __name__ == "__main__":
    main()
