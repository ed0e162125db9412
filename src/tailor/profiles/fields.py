"""The fields of an event that definitions can read, and how each is read from the event log.

A definition names a field of an event as one of the built-in fields (`event`, `name`, `type`,
`source_id`, `channel`, `device`, `timestamp`) or as a path into its JSON: `properties.category`,
`context.campaign.source`, `traits.plan`; `[*]` once in a path reads every element of a list
(`properties.products[*].category` is the list of the categories of an order's products). The
values a definition reads are copied once, when an event arrives, into a narrow table of typed
columns (`profile_facts`, see `tailor.profiles.facts`), so evaluating definitions never parses
JSON again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from tailor.identity.service import DEVICE_KIND, TOUCH_CHANNEL

BUILTIN_FIELDS: dict[str, str] = {
    "event": "event",
    "name": "name",
    "type": "type",
    "source_id": "source_id",
    "channel": "channel",
    "device": "device",
    "timestamp": "ts",
}
"""Built-in fields and their columns in `profile_facts`."""

JSON_ROOTS = ("properties", "context", "traits")
"""The JSON columns of an event that paths may start from."""

_KEY = re.compile(r"^[A-Za-z0-9_$@][A-Za-z0-9_ $@.-]{0,99}$")
_PART = re.compile(r"^(?P<key>[^\[\]]+)(?P<list>\[\*\])?$")


@dataclass(frozen=True)
class FieldPath:
    """A field of an event: built in, or a path into one of its JSON columns."""

    text: str
    root: str
    keys: tuple[str, ...]
    list_at: int | None
    """Index of the key after which `[*]` stands (the value is a list), None for a single value."""

    @property
    def builtin(self) -> bool:
        return self.root in BUILTIN_FIELDS

    @property
    def is_list(self) -> bool:
        return self.list_at is not None

    @property
    def column(self) -> str:
        """The column of `profile_facts` holding this field."""
        if self.builtin:
            return BUILTIN_FIELDS[self.root]
        return "x_" + hashlib.md5(self.text.encode()).hexdigest()[:12]

    def json_path(self) -> str:
        """The DuckDB JSON path of the field inside its root column."""
        out = "$"
        for i, key in enumerate(self.keys):
            out += '."' + key.replace('"', "") + '"'
            if self.list_at == i:
                out += "[*]"
        return out

    def extract_sql(self) -> str:
        """SQL reading the field from a row of `events` (as text, or a list of text)."""
        if self.root == "channel":
            return TOUCH_CHANNEL
        if self.root == "device":
            return DEVICE_KIND
        if self.builtin:
            return '"timestamp"' if self.root == "timestamp" else self.root
        return f"json_extract_string({self.root}, '{self.json_path()}')"

    def sql_type(self) -> str:
        """The column type in `profile_facts`."""
        if self.root == "timestamp":
            return "TIMESTAMPTZ"
        return "VARCHAR[]" if self.is_list else "VARCHAR"


def parse_field(text: object, default_root: str | None = None) -> FieldPath:
    """A field path from its text; `default_root` (say `properties`) is put in front of a bare key.

    Raises ValueError saying what is wrong.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a field must be a non-empty string such as properties.category")
    text = text.strip()
    if text in BUILTIN_FIELDS:
        return FieldPath(text, text, (), None)
    parts = text.split(".")
    if parts[0] not in JSON_ROOTS:
        if default_root is None:
            roots = ", ".join([*BUILTIN_FIELDS, *(f"{r}.KEY" for r in JSON_ROOTS)])
            raise ValueError(f"unknown field {text!r}; fields are {roots}")
        parts = [default_root, *parts]
    root, rest = parts[0], parts[1:]
    if not rest:
        raise ValueError(f"{text!r} names the whole {root} object; name a key inside it ({root}.KEY)")
    keys: list[str] = []
    list_at: int | None = None
    for part in rest:
        match = _PART.match(part)
        if match is None or not _KEY.match(match.group("key")):
            raise ValueError(f"{text!r}: {part!r} is not a key (letters, digits, _ - @ $ and spaces)")
        keys.append(match.group("key"))
        if match.group("list"):
            if list_at is not None:
                raise ValueError(f"{text!r}: [*] may stand only once in a path")
            list_at = len(keys) - 1
    canonical = root + "".join("." + k + ("[*]" if list_at == i else "") for i, k in enumerate(keys))
    return FieldPath(canonical, root, tuple(keys), list_at)
