"""The synthetic customer base and the demo scenario."""
