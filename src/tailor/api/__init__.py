"""The HTTP application: collection, admin API and OpenAPI description."""

from tailor.api.app import create_app

__all__ = ["create_app"]
