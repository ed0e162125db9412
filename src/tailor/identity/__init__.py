"""Identity resolution: identifier types, normalisation, blocked values and the identity graph."""

from tailor.identity.exceptions import IdentityError, UnknownIdentifierTypeError
from tailor.identity.graph import IdentityGraph
from tailor.identity.identifiers import (
    ANONYMOUS_ID,
    BUILTIN_TYPES,
    CRM_ID,
    DEVICE_ID,
    EMAIL,
    NAME,
    PHONE,
    RECORD,
    USER_ID,
    IdentifierType,
    Normaliser,
)
from tailor.identity.normalise import (
    IdentifierNormaliser,
    NormalisedValue,
    default_normaliser,
    normalise,
    normalise_many,
)
from tailor.identity.rules import NormalisationRules

__all__ = [
    "ANONYMOUS_ID",
    "BUILTIN_TYPES",
    "CRM_ID",
    "DEVICE_ID",
    "EMAIL",
    "NAME",
    "PHONE",
    "RECORD",
    "USER_ID",
    "IdentifierNormaliser",
    "IdentifierType",
    "IdentityError",
    "IdentityGraph",
    "NormalisationRules",
    "NormalisedValue",
    "Normaliser",
    "UnknownIdentifierTypeError",
    "default_normaliser",
    "normalise",
    "normalise_many",
]
