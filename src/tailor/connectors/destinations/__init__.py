"""Destinations: rows keyed by an id, from a SQL query over the store, kept in step somewhere else."""
