"""One sync of a destination: plan the changes into the outbox, then deliver the due batches in order."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tailor.connectors.destinations.outbox import Outbox
from tailor.connectors.destinations.senders import FileSender, Sender, SqlSender, WebhookSender
from tailor.connectors.destinations.spec import (
    DestinationSpec,
    FileDestinationSpec,
    SqlDestinationSpec,
    WebhookDestinationSpec,
)
from tailor.connectors.exceptions import DestinationRejectedError, DestinationUnavailableError

IN_RUN_RETRIES = 3
"""Attempts at a batch within one run (waits of 0.2, 0.4 s) before the run counts a failed attempt."""


@dataclass
class SyncResult:
    """What one sync did."""

    rows_read: int = 0
    rows_unchanged: int = 0
    rows_sent: int = 0
    rows_dead: int = 0
    batches_planned: int = 0
    batches_sent: int = 0
    batches_dead: int = 0
    batches_waiting: int = 0
    error: str | None = None
    """The last failure, when the destination was unavailable (the run stopped there)."""
    rejected: list[str] = field(default_factory=list)
    """Why dead-lettered batches were refused."""


def sender_for(spec: DestinationSpec, data_dir: Path) -> Sender:
    """The sender of a destination spec."""
    if isinstance(spec, WebhookDestinationSpec):
        return WebhookSender(spec)
    if isinstance(spec, SqlDestinationSpec):
        return SqlSender(spec)
    assert isinstance(spec, FileDestinationSpec)
    return FileSender(spec, data_dir / spec.path)


AfterSend = Callable[[str], None]
"""Called after a batch reached the destination and before it is recorded as sent (crash tests)."""


def sync_destination(
    name: str,
    spec: DestinationSpec,
    outbox: Outbox,
    sender: Sender,
    run_id: int,
    after_send: AfterSend | None = None,
) -> SyncResult:
    """Plans what changed since the last sync and delivers every due batch, stopping at an outage."""
    plan = outbox.plan(name, spec.export_query(), spec.export_key, spec.batch_rows, run_id)
    result = SyncResult(plan.rows_read, plan.unchanged, batches_planned=plan.batches)
    due = outbox.due(name)
    for n, batch_id in enumerate(due):
        batch = outbox.batch(name, batch_id)
        error: Exception | None = None
        for attempt in range(IN_RUN_RETRIES):
            try:
                sender.send(name, batch)
                error = None
                break
            except DestinationUnavailableError as e:
                error = e
                if attempt + 1 < IN_RUN_RETRIES:
                    time.sleep(0.2 * 2**attempt)
            except DestinationRejectedError as e:
                error = e
                break
        if error is None:
            if after_send is not None:
                after_send(batch_id)
            outbox.delivered(name, batch_id)
            result.rows_sent += len(batch.rows)
            result.batches_sent += 1
            continue
        terminal = isinstance(error, DestinationRejectedError)
        dead = outbox.failed(name, batch_id, str(error), spec.retry_backoff_s, spec.max_attempts, terminal)
        if dead:
            result.batches_dead += 1
            result.rows_dead += len(batch.rows)
            result.rejected.append(f"batch {batch_id}: {error}")
        if not terminal:
            # The destination is away: later batches would fail the same way, and must land after this one.
            result.error = str(error)
            result.batches_waiting = len(due) - n - (1 if dead else 0)
            break
    return result
