"""The OpenAPI description of the journeys API (merged into /openapi.json)."""

from __future__ import annotations

from typing import Any

from tailor.journeys.api import JourneyList, StepCounts
from tailor.journeys.results import GroupResult, JourneyResults, Lift, StepResult
from tailor.journeys.store import SavedJourney

JOURNEY_SCHEMAS: list[type] = [
    SavedJourney,
    JourneyList,
    StepCounts,
    JourneyResults,
    StepResult,
    GroupResult,
    Lift,
]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, responses: dict[str, Any], named: bool = True, body: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": ["journeys"],
        "summary": summary,
        "security": [{"adminToken": []}],
        "responses": {**responses, "401": _json(_ref("ErrorBody"), "missing or unknown admin token")},
    }
    if named:
        op["parameters"] = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "description": "a journey"}}},
        }
    return op


def journey_paths() -> dict[str, Any]:
    """The path items of the journeys API."""
    missing = {"404": _json(_ref("ErrorBody"), "no such journey")}
    return {
        "/api/v1/journeys": {
            "get": _op("Every journey", {"200": _json(_ref("JourneyList"), "the journeys")}, named=False)
        },
        "/api/v1/journeys/{name}": {
            "get": _op("One journey", {"200": _json(_ref("SavedJourney"), "the journey"), **missing}),
            "put": _op(
                "Create or replace a journey (checked first: every problem is listed)",
                {
                    "200": _json(_ref("SavedJourney"), "saved"),
                    "400": _json(
                        _ref("ErrorBody"), "the body is not a JSON object, or names another journey"
                    ),
                    "422": _json(_ref("InvalidDefinition"), "not saved: every problem with its path"),
                },
                body=True,
            ),
            "delete": _op(
                "Delete a journey (its people exit)", {"204": {"description": "deleted"}, **missing}
            ),
        },
        "/api/v1/journeys/{name}/counts": {
            "get": _op(
                "People through and on each step", {"200": _json(_ref("StepCounts"), "counts"), **missing}
            )
        },
        "/api/v1/journeys/{name}/results": {
            "get": _op(
                "Campaign results per step and variant, and lift over holdout and control",
                {"200": _json(_ref("JourneyResults"), "the results"), **missing},
            )
        },
    }
