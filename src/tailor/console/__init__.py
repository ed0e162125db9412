"""The web console: a single-page app of plain ES modules served by `tailor serve` at `/`.

`web.py` serves the page shell and the static files (deep links such as `/profiles/prof_x` get the
shell too), `api.py` the few JSON routes the console needs that no other API answers: an overview of
the store, profile search, a person's timeline, the live event debugger, sources and cached
analytics. The pages themselves are in `static/pages/`, one module per page.
"""

from __future__ import annotations

from tailor.console.api import console_api_routes
from tailor.console.web import console_web_routes

__all__ = ["console_api_routes", "console_web_routes"]
