"""Fixtures of the identity tests: a runtime with the identity stage, fed messages (`Graph`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tailor.runtime import Runtime
from tests.conftest import DataDir
from tests.identity.test_graph import Graph


@pytest.fixture
def graph(data_dir: DataDir) -> Iterator[Graph]:
    rt = Runtime(data_dir.path)
    g = Graph(rt)
    yield g
    g.proc.close()
    rt.close()


@pytest.fixture
def tight(data_dir: DataDir) -> Iterator[Graph]:
    """A graph whose profiles hold at most two emails and three anonymous ids."""
    rt = Runtime(data_dir.path)
    g = Graph(rt, limits={"email": 2, "anonymous_id": 3})
    yield g
    g.proc.close()
    rt.close()
