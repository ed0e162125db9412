"""Storage: the embedded DuckDB store, its schema and the event log."""

from tailor.store.database import Database, open_database
from tailor.store.eventlog import EventLog

__all__ = ["Database", "EventLog", "open_database"]
