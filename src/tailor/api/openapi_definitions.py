"""The OpenAPI description of the definitions API (computed traits, segments, members, changes)."""

from __future__ import annotations

from typing import Any

import msgspec

from tailor.api.definitions import InvalidDefinition
from tailor.profiles.service import SavedDefinition, SegmentPreview, TraitPreview
from tailor.profiles.view import Observation
from tailor.segments.members import Member, SegmentChange


class DefinitionList(msgspec.Struct):
    """Saved definitions of one kind."""

    definitions: list[SavedDefinition]


class MemberPage(msgspec.Struct):
    """A page of a segment's members."""

    segment: str
    total: int
    members: list[Member]


class ChangeList(msgspec.Struct):
    """Entries into and exits from segments, oldest first."""

    changes: list[SegmentChange]


class TraitHistory(msgspec.Struct):
    """Every value one trait of a profile was given."""

    trait: str
    history: list[Observation]


DEFINITION_TYPES: list[type] = [
    SavedDefinition,
    DefinitionList,
    SegmentPreview,
    TraitPreview,
    InvalidDefinition,
    MemberPage,
    ChangeList,
    TraitHistory,
]
"""The shapes these routes answer with, for the document's components."""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(
    summary: str, responses: dict[str, Any], params: list[dict[str, Any]], body: bool = False
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": ["definitions"],
        "summary": summary,
        "security": [{"adminToken": []}],
        "responses": {**responses, "401": _json(_ref("ErrorBody"), "missing or unknown admin token")},
    }
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "description": "a definition"}}},
        }
    return op


def definition_paths(paths: dict[str, Any]) -> None:
    """Adds the definitions API to an OpenAPI `paths` object."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    pid = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    trait = {"name": "trait", "in": "path", "required": True, "schema": {"type": "string"}}
    invalid = {"422": _json(_ref("InvalidDefinition"), "not saved: every problem with its path")}
    bad = {"400": _json(_ref("ErrorBody"), "the body is not a JSON object, or names another definition")}
    missing = {"404": _json(_ref("ErrorBody"), "no such definition")}
    saved = _json(_ref("SavedDefinition"), "saved and evaluated for everyone")
    query = [
        {"name": n, "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}}
        for n in ("limit", "offset")
    ]
    for path, what, preview in (
        ("traits", "computed trait", "TraitPreview"),
        ("segments", "segment", "SegmentPreview"),
    ):
        paths[f"/api/v1/{path}"] = {
            "get": _op(f"Every {what}", {"200": _json(_ref("DefinitionList"), "the definitions")}, []),
            "post": _op(
                f"Create a {what}",
                {"201": saved, **invalid, **bad, "409": _json(_ref("ErrorBody"), "the name is taken")},
                [],
                body=True,
            ),
        }
        paths[f"/api/v1/{path}/preview"] = {
            "post": _op(
                f"Evaluate a {what} for everyone without saving it",
                {"200": _json(_ref(preview), "what it would hold now"), **invalid, **bad},
                [],
                body=True,
            )
        }
        paths[f"/api/v1/{path}/{{name}}"] = {
            "get": _op(
                f"One {what}", {"200": _json(_ref("SavedDefinition"), "the definition"), **missing}, [name]
            ),
            "put": _op(f"Create or replace a {what}", {"200": saved, **invalid, **bad}, [name], body=True),
            "delete": _op(
                f"Delete a {what} (refused while other definitions use it)",
                {"204": {"description": "deleted"}, **missing, **invalid},
                [name],
            ),
        }
    fmt = {"name": "format", "in": "query", "required": False, "schema": {"enum": ["json", "csv", "parquet"]}}
    paths["/api/v1/segments/{name}/members"] = {
        "get": _op(
            "A segment's members (JSON pages, or all as CSV or Parquet)",
            {
                "200": {
                    "description": "the members",
                    "content": {
                        "application/json": {"schema": _ref("MemberPage")},
                        "text/csv": {"schema": {"type": "string"}},
                        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
                    },
                },
                **missing,
                "400": _json(_ref("ErrorBody"), "bad parameter"),
            },
            [name, fmt, *query],
        )
    }
    after = [
        {"name": n, "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}}
        for n in ("after", "limit")
    ]
    changes = {
        "200": _json(_ref("ChangeList"), "entries and exits"),
        "400": _json(_ref("ErrorBody"), "bad parameter"),
    }
    paths["/api/v1/segments/{name}/changes"] = {
        "get": _op("Entries into and exits from one segment", {**changes, **missing}, [name, *after])
    }
    segment = {"name": "segment", "in": "query", "required": False, "schema": {"type": "string"}}
    paths["/api/v1/segment-changes"] = {
        "get": _op("Entries into and exits from every segment", changes, [segment, *after])
    }
    paths["/api/v1/profiles/{id}/traits/{trait}/history"] = {
        "get": _op(
            "Every value one trait of a profile was given, with provenance",
            {
                "200": _json(_ref("TraitHistory"), "the history"),
                "404": _json(_ref("ErrorBody"), "no such profile"),
            },
            [pid, trait],
        )
    }
