"""The three-way merge of one contact's field: the CRM's value, Tailor's, and the base they last agreed on.

Values are compared in a canonical text form per type (`canonical`), so `12.50` in a NUMERIC
column and `12.5` in a trait are one value, and `1` in a MariaDB TINYINT is `true`.

Tailor's side counts as changed only if its surviving value differs from the base, comes from an
observation newer than the one the base last saw (`tailor_seq`), and was not written by this sync
itself (its own source id): a value Tailor took from the CRM, or one the processor has not applied
yet, is never a Tailor change, so nothing echoes back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from tailor.connectors.crm.spec import Owner

_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}


def canonical(value: Any, type_: str) -> str | None:
    """A value (from the CRM or a trait's text) in the form both sides are compared in; None if empty.

    Raises ValueError when the value is not of the type.
    """
    if value is None:
        return None
    text = ("true" if value else "false") if isinstance(value, bool) else str(value).strip()
    if text == "":
        return None
    if type_ == "boolean":
        low = text.lower()
        if low in _TRUE:
            return "true"
        if low in _FALSE:
            return "false"
        raise ValueError(f"{text!r} is not a boolean")
    if type_ in ("integer", "number"):
        try:
            number = Decimal(text)
        except InvalidOperation as e:
            raise ValueError(f"{text!r} is not a number") from e
        if not number.is_finite():
            raise ValueError(f"{text!r} is not a finite number")
        if type_ == "integer":
            if number != number.to_integral_value():
                raise ValueError(f"{text!r} is not an integer")
            return str(int(number))
        as_float = float(number)
        return str(int(as_float)) if math.isfinite(as_float) and as_float.is_integer() else repr(as_float)
    return text


def to_python(text: str | None, type_: str) -> Any:
    """A canonical value as the CRM column is written with."""
    if text is None:
        return None
    if type_ == "boolean":
        return text == "true"
    if type_ == "integer":
        return int(text)
    if type_ == "number":
        return float(text)
    return text


@dataclass(frozen=True)
class TailorValue:
    """A profile's surviving value of a trait, with where and when it was observed."""

    text: str | None
    seq: int
    observed_at: datetime
    source_id: str


@dataclass(frozen=True)
class Base:
    """What both sides last agreed on for one (contact, field), and the Tailor observation seen then."""

    value: str | None
    tailor_seq: int


class Action(Enum):
    """What a merge decides for one field."""

    NOTHING = "nothing"
    AGREE = "agree"
    """Both sides hold the same value: only the base moves (first sight, or a crash after a write)."""
    TO_TAILOR = "to_tailor"
    TO_CRM = "to_crm"


@dataclass(frozen=True)
class Decision:
    """The merge's outcome for one field: the action, the base's next value, and whether it was a conflict."""

    action: Action
    value: str | None
    tailor_seq: int
    conflict: bool = False


def merge(
    owner: Owner,
    crm: str | None,
    crm_at: datetime | None,
    tailor: TailorValue | None,
    base: Base | None,
    own_source: str,
) -> Decision:
    """Decides one field of one contact (values canonical)."""
    agreed = base.value if base else None
    seen = base.tailor_seq if base else -1
    tailor_text = tailor.text if tailor else None
    crm_changed = crm != agreed if base else crm is not None
    tailor_changed = (
        tailor is not None and tailor.source_id != own_source and tailor.seq > seen and tailor_text != agreed
    )
    # The Tailor observation is seen from here on, whatever wins: it must not count as a change later.
    now_seen = max(seen, tailor.seq) if tailor else seen
    if not crm_changed and not tailor_changed:
        if base is None or now_seen != seen:
            return Decision(
                Action.AGREE if base is not None or crm is not None else Action.NOTHING, crm, now_seen
            )
        return Decision(Action.NOTHING, agreed, seen)
    if crm_changed and tailor_changed and crm == tailor_text:
        return Decision(Action.AGREE, crm, now_seen)
    if crm_changed and not tailor_changed:
        return Decision(Action.TO_TAILOR, crm, now_seen)
    assert tailor is not None
    if tailor_changed and not crm_changed:
        return Decision(Action.TO_CRM, tailor_text, now_seen)
    if owner == "crm" or (owner == "latest" and crm_at is not None and crm_at > tailor.observed_at):
        return Decision(Action.TO_TAILOR, crm, now_seen, conflict=True)
    return Decision(Action.TO_CRM, tailor_text, now_seen, conflict=True)
