"""The background work of privacy in a running server: keeping the collector's view fresh, retention."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tailor.runtime import Runtime

log = logging.getLogger(__name__)
REFRESH_S = 1.0


class PrivacyScheduler:
    """Refreshes tombstones, recorded analytics choices and tokens every second; runs retention."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_retention = time.monotonic() + 5.0
        self.last_error: str | None = None

    def tick(self) -> None:
        """One round: refresh, and retention when it is due."""
        rt = self._rt
        rt.access.refresh()
        rt.privacy.gate.refresh(rt.db, {s.id: s.name for s in rt.keyring.sources()})
        if rt.config.privacy.retention and time.monotonic() >= self._next_retention:
            self._next_retention = time.monotonic() + rt.config.privacy.retention_interval_s
            result = rt.privacy.retain()
            if result.total:
                log.info("retention deleted %d events", result.total)

    def _loop(self) -> None:
        while not self._stop.wait(REFRESH_S):
            try:
                self.tick()
                self.last_error = None
            except Exception as e:
                self.last_error = f"{type(e).__name__}"
                log.exception("privacy refresh failed; retrying")

    def start(self) -> None:
        """Starts the background thread."""
        self._thread = threading.Thread(target=self._loop, name="tailor-privacy", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
