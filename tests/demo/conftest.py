"""Shared fixtures: one small generated customer base for all demo tests."""

from __future__ import annotations

from typing import Any

import pytest

from tailor.demo.synth import CustomerBase, EventLabel, SynthConfig, generate

SMALL = SynthConfig(people=400, seed=7)


@pytest.fixture(scope="session")
def base() -> CustomerBase:
    """A small customer base; tests must not change what it returns."""
    return generate(SMALL)


@pytest.fixture(scope="session")
def labelled(base: CustomerBase) -> list[tuple[EventLabel, dict[str, Any]]]:
    """All events of the small base with their ground-truth labels."""
    return list(base.labelled_events())


@pytest.fixture(scope="session")
def events(labelled: list[tuple[EventLabel, dict[str, Any]]]) -> list[dict[str, Any]]:
    """All events of the small base."""
    return [event for _, event in labelled]


@pytest.fixture(scope="session")
def records(base: CustomerBase) -> dict[str, list[dict[str, str]]]:
    """The record sources of the small base."""
    return base.records()


@pytest.fixture(scope="session")
def truth(base: CustomerBase) -> list[tuple[str, str, str]]:
    """The ground truth of the small base."""
    return base.truth()
