"""Connectors: record imports from other systems (file and database sources come later)."""
