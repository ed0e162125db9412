"""Background work at a lower CPU priority than collection.

On two cores the collector's request path and its group commit hold the GIL for most of what they
do; when the kernel preempts one of them for the processor's DuckDB work, every request waits
while it is off the CPU (the group commit took three times its CPU time in wall time). With the
processor's thread and DuckDB's worker threads at a lower priority, collection takes the CPU when
it needs it and processing has the rest; while the machine has CPU to spare nothing changes.
Measured with the ingest load (bench/ingest.py's bodies, 32 connections, 10 s, three alternating
runs of each), events acknowledged per second and events through every stage during the run:
nice 0 60-63k and 294-367k, nice 5 66-70k and 320-333k, nice 10 69-72k and 125-140k. At 5 fewer
stalls leave more done on both sides; at 10 processing starves while collection is saturated.

Linux only (its nice value is per thread); elsewhere these do nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

import duckdb

log = logging.getLogger(__name__)


def lower_this_thread(nice: int) -> bool:
    """Lowers the calling thread's CPU priority to at least `nice`; True if it did."""
    if nice <= 0 or sys.platform != "linux":
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))
    except OSError as e:
        log.warning("could not lower the priority of thread %d: %s", tid, e)
        return False
    return True


def lower_duckdb_workers(con: duckdb.DuckDBPyConnection, nice: int) -> None:
    """Restarts DuckDB's worker threads from a thread at `nice`, whose priority they inherit.

    The threads that call DuckDB (the collector's loader, the API) keep their own priority; only
    the work DuckDB spreads onto its workers runs lower.
    """
    if nice <= 0 or sys.platform != "linux":
        return
    threads = int(con.execute("SELECT current_setting('threads')").fetchone()[0])  # type: ignore[index]
    if threads < 2:
        return
    failure: list[BaseException] = []

    def relaunch() -> None:
        try:
            if lower_this_thread(nice):
                con.execute("SET threads = 1")
                con.execute(f"SET threads = {threads}")
        except BaseException as e:  # reported on the caller's thread
            failure.append(e)

    worker = threading.Thread(target=relaunch, name="tailor-duckdb-priority")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
