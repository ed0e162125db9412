"""Tailor: an open-source customer data platform."""

__version__ = "0.1.0"

__all__ = ["__version__"]
