"""Segments: definitions of groups of people, compiled to SQL and kept live by the profiles stage."""

from tailor.segments.definitions import SegmentDefinition

__all__ = ["SegmentDefinition"]
