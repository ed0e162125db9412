"""A lean HTTP/1.1 load generator for the collection API, run as its own process.

Usage: python bench/loadgen.py --port P --path /v1/batch --bodies FILE --write-key K
       (FILE: one request a line, as "<number of events> <JSON body>")
       [--duration S] [--concurrency C] [--rate R] [--gzip]
Prints one JSON object: requests, events, errors, seconds, events_per_s, p50_ms, p99_ms.

Each body holds the token @@RUN@@ inside every messageId; it is replaced by a per-run salt and a
counter on each send, so that every request carries new messages (no accidental duplicates).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip as gzip_lib
import json
import time

import uvloop

TOKEN = b"@@RUN@@"


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.events = 0
        self.errors: dict[int, int] = {}


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    status_line = await reader.readline()
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


def _request(path: str, body: bytes, auth: bytes, gz: bool) -> bytes:
    extra = b""
    if gz:
        body = gzip_lib.compress(body, 1)
        extra = b"Content-Encoding: gzip\r\n"
    return (
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Authorization: Basic "
        + auth
        + b"\r\n"
        + extra
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


async def run(args: argparse.Namespace) -> dict[str, float]:
    with open(args.bodies, "rb") as f:
        lines = [line.rstrip(b"\n").split(b" ", 1) for line in f if line.strip()]
    counts = [int(n) for n, _ in lines]
    bodies = [body for _, body in lines]
    auth = base64.b64encode(f"{args.write_key}:".encode())
    stats = Stats()
    counter = 0
    salt = (args.salt or f"{time.time_ns():x}").encode()
    start = time.perf_counter()
    stop = start + args.duration
    interval = 1.0 / args.rate if args.rate else 0.0

    async def worker(first_slot: int) -> None:
        nonlocal counter
        reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
        try:
            while True:
                i = counter
                counter += 1
                # Open-loop pacing: latency counts from the planned send time, so a slow server
                # cannot hide its queueing delay (no coordinated omission).
                planned = start + i * interval if interval else time.perf_counter()
                if planned >= stop:
                    return
                delay = planned - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                body = bodies[i % len(bodies)].replace(TOKEN, b"%s-%010d" % (salt, i))
                status = await _one(reader, writer, _request(args.path, body, auth, args.gzip))
                stats.latencies.append(time.perf_counter() - planned)
                if status == 200:
                    stats.events += counts[i % len(bodies)]
                else:
                    stats.errors[status] = stats.errors.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(worker(n) for n in range(args.concurrency)))
    elapsed = time.perf_counter() - start
    lat = sorted(stats.latencies)

    def pct(p: float) -> float:
        return 1000 * lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")

    return {
        "requests": len(lat),
        "events": stats.events,
        "errors": sum(stats.errors.values()),
        "error_statuses": stats.errors,  # type: ignore[dict-item]
        "seconds": round(elapsed, 3),
        "events_per_s": round(stats.events / elapsed, 1),
        "requests_per_s": round(len(lat) / elapsed, 1),
        "p50_ms": round(pct(0.50), 2),
        "p99_ms": round(pct(0.99), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v1/batch")
    parser.add_argument("--bodies", required=True)
    parser.add_argument("--write-key", required=True)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="requests per second (0: as fast as possible)"
    )
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--salt", default="", help="prefix of generated messageIds (default: unique per run)")
    args = parser.parse_args()
    print(json.dumps(uvloop.run(run(args))))


if __name__ == "__main__":
    main()
