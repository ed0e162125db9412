"""Message templates: sandboxed Jinja2, checked at save time against a declared schema of fields.

Rendering runs in `SandboxedEnvironment` (no attribute access to Python internals) with
`StrictUndefined`, so a missing variable is an error rather than an empty string. Saving a
template parses every part and lists every problem at once: syntax errors with their line, and
each variable path (`profile.frist_name`) that the schema does not declare.
"""

from __future__ import annotations

import difflib
import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jinja2
import msgspec
from jinja2 import meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from tailor.channels.exceptions import TemplateError, TemplateProblem, UnknownTemplateError

PARTS = {"email": ("subject", "html", "text"), "sms": ("body",), "webhook": ("payload",)}
"""The parts each channel's template has; every one is required."""

DEFAULT_FIELDS: dict[str, str] = {
    "profile.first_name": "string",
    "profile.last_name": "string",
    "profile.email": "string",
    "profile.phone": "string",
    "profile.user_id": "string",
    "profile.city": "string",
    "profile.country": "string",
    "profile.traits.*": "any trait of the profile",
    "event.name": "string: the event that triggered the message",
    "event.properties.*": "any property of that event",
    "offer.code": "string",
    "offer.title": "string",
    "offer.discount_percent": "number",
    "offer.expires_at": "string: ISO date and time",
    "offer.url": "string: a link to the offer",
    "offer.products": "list of products ({name, url, price, image_url})",
    "message_id": "string: the message id (built in)",
    "unsubscribe_url": "string: the one-click unsubscribe page (built in)",
}
"""Fields every template may use; a template's own `fields` add to them."""


class TemplateDefinition(msgspec.Struct, forbid_unknown_fields=True):
    """A template as saved: its channel's parts and the fields it may use."""

    name: str
    channel: str
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    body: str | None = None
    """The text of an SMS."""
    payload: str | None = None
    """A webhook's body; it must render to JSON."""
    fields: dict[str, str] = msgspec.field(default_factory=dict)
    """Extra fields the data will hold: dotted path -> description; `a.b.*` allows anything under a.b."""

    def parts(self) -> dict[str, str | None]:
        """The parts of this template's channel, by name."""
        return {p: getattr(self, p) for p in PARTS.get(self.channel, ())}


@dataclass(frozen=True)
class Rendered:
    """A template rendered for one message."""

    parts: dict[str, str]

    def __getitem__(self, part: str) -> str:
        return self.parts[part]


def _environments() -> tuple[SandboxedEnvironment, SandboxedEnvironment]:
    text = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    html = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=True, keep_trailing_newline=True)
    return text, html


_TEXT_ENV, _HTML_ENV = _environments()


def _env(part: str) -> SandboxedEnvironment:
    return _HTML_ENV if part == "html" else _TEXT_ENV


def _paths(node: nodes.Node) -> Iterator[tuple[str, int]]:
    """Every variable path read by an expression tree, as ("profile.first_name", line)."""
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        chain: list[str] = []
        cur: nodes.Node = node
        while isinstance(cur, nodes.Getattr | nodes.Getitem):
            if isinstance(cur, nodes.Getattr):
                chain.append(cur.attr)
            elif isinstance(cur.arg, nodes.Const) and isinstance(cur.arg.value, str):
                chain.append(cur.arg.value)
            else:
                yield from _paths(cur.arg)
                chain.append("*")
            cur = cur.node
        if isinstance(cur, nodes.Name) and cur.ctx == "load":
            yield ".".join([cur.name, *reversed(chain)]), node.lineno
            return
        yield from _paths(cur)
        return
    if isinstance(node, nodes.Name) and node.ctx == "load":
        yield node.name, node.lineno
        return
    for child in node.iter_child_nodes():
        yield from _paths(child)


def _declared(path: str, fields: dict[str, str]) -> bool:
    """Whether a read of `path` is covered by the schema (a field, a prefix of one, or under a wildcard)."""
    parts = path.split(".")
    for field in fields:
        declared = field.split(".")
        if (
            declared[-1] == "*"
            and parts[: len(declared) - 1] == declared[:-1]
            and len(parts) >= len(declared) - 1
        ):
            return True
        if all(p == d or p == "*" for p, d in zip(parts, declared, strict=False)) and len(parts) <= len(
            declared
        ):
            return True
    return False


def validate(definition: TemplateDefinition) -> list[TemplateProblem]:
    """Every problem of a template: unknown channel, missing parts, syntax errors, undeclared fields."""
    problems: list[TemplateProblem] = []
    if not definition.name or len(definition.name) > 200:
        problems.append(TemplateProblem("name", None, "must be 1 to 200 characters"))
    if definition.channel not in PARTS:
        problems.append(TemplateProblem("channel", None, f"must be one of {sorted(PARTS)}"))
        return problems
    fields = {**DEFAULT_FIELDS, **definition.fields}
    allowed = set(PARTS[definition.channel])
    for part in ("subject", "html", "text", "body", "payload"):
        if part not in allowed and getattr(definition, part) is not None:
            problems.append(
                TemplateProblem(part, None, f"a {definition.channel} template has no {part} part")
            )
    for part, source in definition.parts().items():
        if source is None or not source.strip():
            problems.append(TemplateProblem(part, None, "is missing"))
            continue
        try:
            tree = _env(part).parse(source)
        except jinja2.TemplateSyntaxError as e:
            problems.append(TemplateProblem(part, e.lineno, f"syntax error: {e.message}"))
            continue
        free = meta.find_undeclared_variables(tree)
        seen: set[str] = set()
        for path, line in _paths(tree):
            if path.split(".")[0] not in free or path in seen or _declared(path, fields):
                continue
            seen.add(path)
            hint = difflib.get_close_matches(path, list(fields), n=1)
            suggestion = f" (did you mean {hint[0]}?)" if hint else ""
            problems.append(TemplateProblem(part, line, f"{path!r} is not a declared field{suggestion}"))
    return problems


def _template_line() -> int | None:
    """The template line of the exception being handled (Jinja2 rewrites frames to template lines)."""
    tb = sys.exc_info()[2]
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class CompiledTemplate:
    """A saved template, compiled once and rendered for many messages."""

    def __init__(self, definition: TemplateDefinition, version: int) -> None:
        problems = validate(definition)
        if problems:
            raise TemplateError(definition.name, problems)
        self.definition = definition
        self.version = version
        self._compiled = {
            part: _env(part).from_string(source or "") for part, source in definition.parts().items()
        }

    def render(self, data: dict[str, Any]) -> Rendered:
        """Renders every part; a missing variable or a sandbox violation is a TemplateError."""
        out: dict[str, str] = {}
        problems: list[TemplateProblem] = []
        for part, template in self._compiled.items():
            try:
                out[part] = template.render(data)
            except jinja2.UndefinedError as e:
                problems.append(TemplateProblem(part, _template_line(), f"undefined: {e.message}"))
            except Exception as e:  # the sandbox's SecurityError, a failing filter, a type error
                problems.append(TemplateProblem(part, _template_line(), f"{type(e).__name__}: {e}"))
        if "payload" in out:
            try:
                json.loads(out["payload"])
            except ValueError as e:
                problems.append(
                    TemplateProblem("payload", e.lineno if hasattr(e, "lineno") else None, f"not JSON: {e}")
                )
        if "subject" in out and ("\n" in out["subject"].strip() or "\r" in out["subject"]):
            problems.append(TemplateProblem("subject", None, "renders to more than one line"))
        if problems:
            raise TemplateError(self.definition.name, problems)
        if "subject" in out:
            out["subject"] = out["subject"].strip()
        return Rendered(out)


_DEFINITION = msgspec.json.Decoder(TemplateDefinition)


class TemplateStore:
    """Saved templates in the messaging database; every save is a new version."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], CompiledTemplate] = {}

    def save(self, conn: sqlite3.Connection, definition: TemplateDefinition) -> int:
        """Validates and saves a template as its next version; TemplateError lists every problem."""
        CompiledTemplate(definition, 0)  # raises with every problem
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT coalesce(max(version), 0) FROM templates WHERE name = ?", (definition.name,)
            ).fetchone()
            version = int(row[0]) + 1
            conn.execute(
                "INSERT INTO templates (name, version, channel, body, created_at) VALUES (?, ?, ?, ?, ?)",
                (
                    definition.name,
                    version,
                    definition.channel,
                    msgspec.json.encode(definition).decode(),
                    time.time(),
                ),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return version

    def get(self, conn: sqlite3.Connection, name: str, version: int | None = None) -> CompiledTemplate:
        """A saved template: that version, or the latest."""
        if version is not None and (name, version) in self._cache:
            return self._cache[(name, version)]
        if version is None:
            row = conn.execute(
                "SELECT version, body FROM templates WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)
            ).fetchone()
        else:
            row = conn.execute(
                "SELECT version, body FROM templates WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
        if row is None:
            which = name if version is None else f"{name} version {version}"
            raise UnknownTemplateError(f"no template {which!r} is saved")
        compiled = CompiledTemplate(_DEFINITION.decode(row[1]), int(row[0]))
        self._cache[(name, compiled.version)] = compiled
        return compiled

    @staticmethod
    def names(conn: sqlite3.Connection) -> list[tuple[str, int, str]]:
        """Every template's name, latest version and channel."""
        return [
            (str(n), int(v), str(c))
            for n, v, c in conn.execute(
                "SELECT name, max(version), channel FROM templates GROUP BY name ORDER BY name"
            )
        ]
