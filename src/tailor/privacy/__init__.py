"""Privacy: consent per purpose and channel, access export, erasure with tombstones, retention."""

from tailor.privacy.decisions import ConsentDecision, ConsentReader, ConsentRecord
from tailor.privacy.registry import PersonalData, PersonalDataTable, register

__all__ = [
    "ConsentDecision",
    "ConsentReader",
    "ConsentRecord",
    "PersonalData",
    "PersonalDataTable",
    "register",
]
