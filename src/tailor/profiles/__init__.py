"""Profiles: the golden record, computed traits and the evaluation that keeps them and segments live."""

from tailor.profiles.catalog import Catalog, parse_segment, parse_trait
from tailor.profiles.definitions import TraitDefinition
from tailor.profiles.exceptions import DefinitionError, Problem
from tailor.profiles.stage import ProfileStage

__all__ = [
    "Catalog",
    "DefinitionError",
    "Problem",
    "ProfileStage",
    "TraitDefinition",
    "parse_segment",
    "parse_trait",
]
