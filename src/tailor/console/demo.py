"""The demo's console user: made with a fresh password, printed once, so the console can be tried."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from tailor.access.store import AccessError

if TYPE_CHECKING:
    from tailor.runtime import Runtime

DEMO_USER = "demo"


def create_demo_user(runtime: Runtime) -> tuple[str, str]:
    """Creates a console user with every scope and returns its name and password.

    Only the password's hash is kept, so a directory the demo reuses gets another user
    (`demo-xxxx`) rather than a password that cannot be shown again.
    """
    password = secrets.token_urlsafe(12)
    for name in (DEMO_USER, *(f"{DEMO_USER}-{secrets.token_hex(2)}" for _ in range(5))):
        try:
            runtime.access.store.add_user(name, password, "admin")
        except AccessError as e:
            if "already exists" not in str(e):
                raise
            continue
        return name, password
    raise AccessError("could not find a free name for the demo's console user")
