"""Running the HTTP server for a data directory."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from tailor.api import create_app
from tailor.process.heap import quiet_garbage_collector
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
