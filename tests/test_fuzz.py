"""Schemathesis against /openapi.json: no generated input gets a 5xx or a stack trace from any endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tailor.api import create_app
from tailor.datadir import init_data_dir
from tailor.runtime import Runtime


def _app(tmp: Path) -> tuple[Runtime, object, str]:
    creds = init_data_dir(tmp / "fuzz-data")
    runtime = Runtime(tmp / "fuzz-data")
    runtime.start()
    return runtime, create_app(runtime, manage_runtime=False), creds.admin_token


_TMP = Path(__import__("tempfile").mkdtemp(prefix="tailor-fuzz-"))
RUNTIME, APP, TOKEN = _app(_TMP)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _close_runtime() -> Iterator[None]:
    yield
    RUNTIME.close()


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_endpoint_fails_on_generated_input(case: schemathesis.Case) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if case.path.startswith("/v1/"):
        headers = {"X-Write-Key": "wk_unknown"}
    response = case.call(headers=headers)
    case.validate_response(response, checks=[not_a_server_error])
    text = response.text
    assert "Traceback" not in text
    assert 'File "' not in text
