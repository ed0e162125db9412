"""Running the HTTP server for a data directory."""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import uvicorn

from tailor.api import create_app
from tailor.runtime import Runtime


def serve(
    data_dir: Path, host: str | None = None, port: int | None = None, runtime: Runtime | None = None
) -> None:
    """Serves collection, processing and the admin API until interrupted."""
    runtime = runtime or Runtime(data_dir)
    config = uvicorn.Config(
        create_app(runtime),
        host=host or runtime.config.server.host,
        port=port if port is not None else runtime.config.server.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_garbage_collector()
    uvicorn.Server(config).run()


def quiet_garbage_collector() -> None:
    """Keeps Python's full garbage collections out of the request path.

    A full collection holds the GIL while it walks every tracked object; with the ~170k objects of
    a started server (modules, the runtime) it took 20-130 ms, every ~2 s at 1,000 requests/s,
    and every request in flight waited. What exists at start-up is frozen out of the collector's
    walk, and collections run after 50,000 net allocations instead of 700 (measured: /v1/track
    p99 at 1,000/s 127-143 ms before, 47-62 ms after, on the same machine).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
