"""Finding people by any identifier or by name, for the console's search box.

A query is tried, in one pass, as an exact identifier of every type it could be (normalised as the
graph's values are: `Ana@Example.org` finds `ana@example.org`, `07911 123456` finds `+447911123456`),
as the start of each word of a name in the golden record (`ana sm` finds Ana Smith), and as the
start of an identifier's value. DuckDB has no index here, so each of the three reads one column
of one table from start to end (about 4M identifiers and 1M names at 1M profiles); exact hits come
first, so a full identifier never waits behind a prefix.
"""

from __future__ import annotations

import re

import msgspec

from tailor.identity.exceptions import IdentityError
from tailor.identity.graph import NODE_KEY
from tailor.identity.service import BadIdentifierError, IdentityService, NotFoundError
from tailor.store.database import Database

NAME_TRAITS = ("first_name", "last_name", "name", "full_name")
EXACT_TYPES = ("email", "phone", "user_id", "anonymous_id", "device_id", "crm_id")
MAX_QUERY = 200
_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*", re.UNICODE)


class SearchHit(msgspec.Struct):
    """A person found: their profile, how to call them, and what matched."""

    profile_id: str
    name: str | None
    email: str | None
    matched: str
    """What matched, as `TYPE: VALUE` or `name: ...`."""
    exact: bool


class SearchResult(msgspec.Struct):
    """The people a query found, exact matches first."""

    query: str
    hits: list[SearchHit]


def _lower(text: str) -> str:
    return text.strip().lower()


class ProfileSearch:
    """Search over the identity graph and the golden record of one store."""

    def __init__(self, db: Database, identity: IdentityService) -> None:
        self._db = db
        self._identity = identity

    def search(self, query: str, limit: int = 20) -> SearchResult:
        """Up to `limit` people matching `query`; an empty or over-long query finds no one."""
        q = query.strip()
        if not q or len(q) > MAX_QUERY:
            return SearchResult(q, [])
        found: dict[str, tuple[str, bool]] = {}
        for pid, matched in self._exact(q):
            found.setdefault(pid, (matched, True))
        # Names before identifier prefixes: "ann" means Annette sooner than an anonymous id "ann...".
        if len(found) < limit:
            for pid, matched in self._names(q, limit):
                found.setdefault(pid, (matched, False))
        if len(found) < limit:
            for pid, matched in self._prefix(q, limit):
                found.setdefault(pid, (matched, False))
        chosen = list(found.items())[:limit]
        labels = self._labels([pid for pid, _ in chosen])
        hits = [
            SearchHit(pid, *labels.get(pid, (None, None)), matched=matched, exact=exact)
            for pid, (matched, exact) in chosen
        ]
        return SearchResult(q, hits)

    def _exact(self, q: str) -> list[tuple[str, str]]:
        """Profiles holding `q` exactly as some identifier type (or as a profile id, old ones too)."""
        if q.startswith("prof_") or q.startswith("profile:"):
            try:
                return [(self._identity.resolve_id(q.removeprefix("profile:")), f"profile: {q}")]
            except NotFoundError:
                return []
        wanted: list[tuple[str, str]] = []
        typed, sep, rest = q.partition(":")
        candidates = [(typed, rest)] if sep and typed in EXACT_TYPES else [(t, q) for t in EXACT_TYPES]
        for type, raw in candidates:
            try:
                wanted.append(self._identity.parse(f"{type}:{raw}"))
            except (BadIdentifierError, IdentityError):
                continue
        if not wanted:
            return []
        keys = ", ".join(NODE_KEY.format(t="?", v="?") for _ in wanted)
        params = [x for pair in wanted for x in pair]
        rows = self._db.execute(
            f"SELECT profile_id, type, value FROM identity_nodes WHERE k IN ({keys}) ORDER BY type", params
        )
        return [(str(pid), f"{t}: {v}") for pid, t, v in rows]

    def _prefix(self, q: str, limit: int) -> list[tuple[str, str]]:
        """Profiles with an identifier value starting with `q` (as typed, or in lower case)."""
        rows = self._db.execute(
            """SELECT profile_id, type, value FROM identity_nodes
            WHERE starts_with(value, ?) OR starts_with(value, ?)
            LIMIT ?""",
            [q, _lower(q), limit],
        )
        return [(str(pid), f"{t}: {v}") for pid, t, v in rows]

    def _names(self, q: str, limit: int) -> list[tuple[str, str]]:
        """Profiles whose name words start with every word of `q` (`ana sm`: Ana Smith)."""
        words = [w.lower() for w in _WORD.findall(q)][:4]
        if not words:
            return []
        traits = ", ".join(f"'{t}'" for t in NAME_TRAITS)
        any_word = " OR ".join("starts_with(w, ?)" for _ in words)
        every = " AND ".join("bool_or(starts_with(w, ?))" for _ in words)
        rows = self._db.execute(
            f"""WITH named AS (
                SELECT profile_id, text, unnest(string_split(lower(text), ' ')) AS w
                FROM profile_traits WHERE trait IN ({traits})
            )
            SELECT profile_id, string_agg(DISTINCT text, ' ') FROM named WHERE {any_word}
            GROUP BY profile_id HAVING {every} ORDER BY profile_id LIMIT ?""",
            [*words, *words, limit],
        )
        return [(str(pid), f"name: {text}") for pid, text in rows]

    def _labels(self, profile_ids: list[str]) -> dict[str, tuple[str | None, str | None]]:
        """Each profile's name (first and last, or name) and email, from the golden record."""
        if not profile_ids:
            return {}
        rows = self._db.execute(
            """SELECT profile_id, trait, text FROM profile_traits
            WHERE profile_id IN (SELECT unnest(?))
              AND trait IN ('first_name', 'last_name', 'name', 'email')""",
            [profile_ids],
        )
        traits: dict[str, dict[str, str]] = {}
        for pid, trait, text in rows:
            traits.setdefault(str(pid), {})[str(trait)] = str(text)
        out: dict[str, tuple[str | None, str | None]] = {}
        for pid in profile_ids:
            t = traits.get(pid, {})
            name = " ".join(x for x in (t.get("first_name"), t.get("last_name")) if x) or t.get("name")
            out[pid] = (name or None, t.get("email"))
        return out
