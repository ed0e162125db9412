"""Reading definitions written as JSON or YAML: every problem is collected with its path."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from tailor.profiles.durations import parse_duration
from tailor.profiles.exceptions import DefinitionError, Problem
from tailor.profiles.fields import FieldPath, parse_field

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
T = TypeVar("T")


class Reader:
    """Walks a definition, collecting problems with their paths instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._path: list[str] = []

    @property
    def path(self) -> str:
        out = ""
        for part in self._path:
            out += part if part.startswith("[") else (f".{part}" if out else part)
        return out

    @contextmanager
    def at(self, part: str | int) -> Iterator[None]:
        """Problems found inside this block are reported under `part`."""
        self._path.append(f"[{part}]" if isinstance(part, int) else part)
        try:
            yield
        finally:
            self._path.pop()

    def problem(self, message: str, part: str | int | None = None) -> None:
        if part is None:
            self.problems.append(Problem(self.path, message))
        else:
            with self.at(part):
                self.problems.append(Problem(self.path, message))

    def fail(self, kind: str, name: str | None) -> None:
        """Raises DefinitionError if any problem was found."""
        if self.problems:
            raise DefinitionError(kind, name, self.problems)

    # -- typed reads ---------------------------------------------------------------------------------

    def mapping(self, value: object, what: str = "an object") -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.problem(f"must be {what}, got {_kind(value)}")
            return None
        return value

    def unknown_keys(self, body: Mapping[str, Any], allowed: set[str]) -> None:
        for key in body:
            if key not in allowed:
                self.problem(f"unknown field; expected one of {', '.join(sorted(allowed))}", str(key))

    def text(self, body: Mapping[str, Any], key: str, required: bool = False, default: str = "") -> str:
        value = body.get(key)
        if value is None:
            if required:
                self.problem("is required", key)
            return default
        if not isinstance(value, str) or (required and not value.strip()):
            self.problem(f"must be a non-empty string, got {_kind(value)}", key)
            return default
        return value

    def name(self, body: Mapping[str, Any], key: str = "name") -> str:
        value = self.text(body, key, required=True)
        if value and not NAME.match(value):
            self.problem("must start with a lower-case letter and hold only a-z, 0-9 and _ (at most 63)", key)
        return value

    def integer(self, body: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
        value = body.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(f"must be a whole number from {low} to {high}, got {value!r}", key)
            return default
        return value

    def duration(self, body: Mapping[str, Any], key: str) -> timedelta | None:
        if body.get(key) is None:
            return None
        try:
            return parse_duration(body[key])
        except ValueError as e:
            self.problem(str(e), key)
            return None

    def field(self, body: Mapping[str, Any], key: str, default_root: str | None = None) -> FieldPath | None:
        if body.get(key) is None:
            return None
        try:
            return parse_field(body[key], default_root)
        except ValueError as e:
            self.problem(str(e), key)
            return None

    def names(self, body: Mapping[str, Any], key: str) -> tuple[str, ...]:
        """A string or a list of strings, as a tuple."""
        value = body.get(key)
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
            self.problem("must be a name or a list of names", key)
            return ()
        return tuple(items)

    def each(self, body: Mapping[str, Any], key: str, read: Callable[[Any], T | None]) -> list[T]:
        """Reads a list under `key` with `read`, each element under its index."""
        value = body.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(f"must be a list, got {_kind(value)}", key)
            return []
        out: list[T] = []
        with self.at(key):
            for i, item in enumerate(value):
                with self.at(i):
                    got = read(item)
                if got is not None:
                    out.append(got)
        return out


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def load_documents(path: Path) -> list[dict[str, Any]]:
    """The definitions in a JSON or YAML file: one object, or a list of them."""
    text = path.read_text("utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise DefinitionError("file", str(path), [Problem("", f"not valid YAML: {e}")]) from e
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            where = f"line {e.lineno} column {e.colno}"
            raise DefinitionError(
                "file", str(path), [Problem("", f"not valid JSON at {where}: {e.msg}")]
            ) from e
    items = data if isinstance(data, list) else [data]
    bad = [i for i, item in enumerate(items) if not isinstance(item, dict)]
    if bad:
        raise DefinitionError(
            "file", str(path), [Problem(f"[{i}]", "each definition must be an object") for i in bad]
        )
    return items
