"""Field comparisons with graded levels, computed for whole arrays of pairs at once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler, Levenshtein

from tailor.identity.matching.prepare import PreparedRecords

NULL = -1
"""The level of a pair where either side lacks the field: it contributes nothing to the match weight."""

Levels = NDArray[np.int8]


@dataclass(frozen=True)
class Comparison:
    """One field comparison: its name and the labels of its levels, the strongest first, "else" last."""

    name: str
    levels: tuple[str, ...]
    tf_adjusted: bool = False
    """Whether an exact agreement is weighed by how common the agreed value is."""


COMPARISONS = (
    Comparison(
        "first_name",
        (
            "exact",
            "jaro-winkler >= 0.92",
            "jaro-winkler >= 0.8",
            "initial of a name given as initial",
            "else",
        ),
        True,
    ),
    Comparison("last_name", ("exact", "jaro-winkler >= 0.92", "jaro-winkler >= 0.8", "else"), True),
    Comparison("dob", ("exact", "day and month swapped", "within a year", "else")),
    # No fuzzy level for emails: similar addresses mostly come from similar names, which are already
    # compared, so a fuzzy email level would count the same evidence twice.
    Comparison("email", ("exact", "same local part, domain mistyped", "else")),
    Comparison("phone", ("exact", "one digit off", "else")),
    Comparison(
        "address", ("postcode and street", "postcode", "street and town", "postcode district", "else")
    ),
)
"""The comparisons of the default model, in the order of the columns of a levels matrix."""

# Level patterns are packed in 3 bits per comparison (NULL and up to 7 levels).
assert all(len(c.levels) <= 7 for c in COMPARISONS)


@dataclass(frozen=True)
class ComparedPairs:
    """The level of each comparison for each pair, and what the term-frequency adjustment needs."""

    levels: NDArray[np.int8]
    """One row per pair, one column per comparison of `COMPARISONS`; NULL where not comparable."""
    exact_values: dict[str, NDArray[np.object_]]
    """For each term-frequency-adjusted comparison, the agreed value where the level is exact."""
    names_swapped: NDArray[np.bool_]
    """Pairs whose names were compared with first and last name of the right record exchanged."""


class _Fields:
    """Columns of prepared records as numpy arrays, taken once and indexed per pair.

    Text fields are also dictionary-encoded to integer codes (-1 where missing), so that equality
    of a million pairs is an integer comparison, not a million string comparisons. First and last
    names share one dictionary, as swapped names compare one with the other.
    """

    def __init__(self, records: PreparedRecords) -> None:
        table = records.table
        n = len(records)
        self.text: dict[str, NDArray[np.object_]] = {}
        self.codes: dict[str, NDArray[np.int64]] = {}
        for name in ("email", "email_local", "phone", "postcode", "district", "street", "city", "initial"):
            self._encode([name], [table.column(name)])
        domain = pc.struct_field(pc.extract_regex(table.column("email"), r"@(?P<domain>.+)$"), [0])
        self._encode(["email_domain"], [domain])
        last_initial = pc.utf8_slice_codeunits(table.column("last"), 0, 1)
        self._encode(["first", "last"], [table.column("first"), table.column("last")])
        self._encode(["initial", "last_initial"], [table.column("initial"), last_initial])
        self.present = {name: codes >= 0 for name, codes in self.codes.items()}
        self.dob = table.column("dob").to_numpy(zero_copy_only=False).astype(np.float64)
        assert all(len(c) == n for c in self.codes.values())

    def _encode(self, names: list[str], columns: list[pa.ChunkedArray | pa.Array]) -> None:
        joined = pa.chunked_array([c for column in columns for c in _chunks(column)], pa.string())
        encoded = pc.dictionary_encode(joined).combine_chunks()
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        size = len(columns[0])
        for k, name in enumerate(names):
            self.codes[name] = codes[k * size : (k + 1) * size]
            self.text[name] = np.array(joined.slice(k * size, size).to_pylist(), dtype=object)


def _chunks(column: pa.ChunkedArray | pa.Array) -> list[pa.Array]:
    return list(column.chunks) if isinstance(column, pa.ChunkedArray) else [column]


def _select(null: NDArray[np.bool_], conditions: list[NDArray[np.bool_]]) -> Levels:
    """The index of the first condition that holds, the "else" level when none does, NULL where null."""
    levels = np.select(conditions, list(range(len(conditions))), default=len(conditions)).astype(np.int8)
    levels[null] = NULL
    return levels


class _Pairs:
    """The two sides of every pair for one field: values, codes and whether both are present."""

    def __init__(self, fields: _Fields, left: NDArray[np.int64], right: NDArray[np.int64]) -> None:
        self.fields, self.left, self.right = fields, left, right

    def equal(self, name: str, other: str | None = None) -> NDArray[np.bool_]:
        a = self.fields.codes[name][self.left]
        b = self.fields.codes[other or name][self.right]
        same: NDArray[np.bool_] = (a == b) & (a >= 0)
        return same

    def both(self, name: str, other: str | None = None) -> NDArray[np.bool_]:
        return self.fields.present[name][self.left] & self.fields.present[other or name][self.right]

    def similarity(self, name: str, other: str | None = None) -> NDArray[np.float64]:
        """Jaro-Winkler similarity where both are present (1 where equal, without computing it)."""
        mask = self.both(name, other)
        equal = self.equal(name, other)
        out = equal.astype(np.float64)
        todo = mask & ~equal
        if todo.any():
            a = self.fields.text[name][self.left[todo]]
            b = self.fields.text[other or name][self.right[todo]]
            out[todo] = process.cpdist(list(a), list(b), scorer=JaroWinkler.similarity)
        return out

    def distance(self, name: str) -> NDArray[np.int64]:
        """Levenshtein distance where both are present (a large number elsewhere)."""
        out = np.full(len(self.left), 1 << 20, dtype=np.int64)
        mask = self.both(name)
        equal = self.equal(name)
        out[equal] = 0
        todo = mask & ~equal
        if todo.any():
            a, b = self.fields.text[name][self.left[todo]], self.fields.text[name][self.right[todo]]
            out[todo] = process.cpdist(list(a), list(b), scorer=Levenshtein.distance)
        return out


def compare(records: PreparedRecords, left: NDArray[np.int64], right: NDArray[np.int64]) -> ComparedPairs:
    """Levels of every comparison for the pairs (left[k], right[k]) of records, without a loop per pair."""
    fields = _Fields(records)
    pairs = _Pairs(fields, left, right)

    # Names: a record with first and last name exchanged is compared the way round that agrees best.
    same_first, same_last = pairs.similarity("first"), pairs.similarity("last")
    first_last, last_first = pairs.similarity("first", "last"), pairs.similarity("last", "first")
    direct, crossed = same_first + same_last, first_last + last_first
    # Only when both names agree crossed-over: chance similarity of unrelated names is not a swap.
    swapped = (crossed > direct + 0.15) & (crossed >= 1.7)
    first_sim = np.where(swapped, first_last, same_first)
    last_sim = np.where(swapped, last_first, same_last)
    has_first = np.where(swapped, pairs.both("first", "last"), pairs.both("first"))
    has_last = np.where(swapped, pairs.both("last", "first"), pairs.both("last"))
    first_equal = np.where(swapped, pairs.equal("first", "last"), pairs.equal("first"))
    last_equal = np.where(swapped, pairs.equal("last", "first"), pairs.equal("last"))
    has_initial = np.where(swapped, pairs.both("initial", "last_initial"), pairs.both("initial"))
    initial_equal = np.where(swapped, pairs.equal("initial", "last_initial"), pairs.equal("initial"))

    # Two full first names that differ are different names even when their initials agree
    # (Marcus, Marie): the initial only counts when one record gives no more than the initial.
    first = _select(
        ~has_initial,
        [
            first_equal,
            has_first & (first_sim >= 0.92),
            has_first & (first_sim >= 0.8),
            ~has_first & initial_equal,
        ],
    )
    last = _select(~has_last, [last_equal, last_sim >= 0.92, last_sim >= 0.8])
    dob = _compare_dob(fields.dob[left], fields.dob[right])
    # The same local part at a different domain is mostly a namesake (john.smith@ at two
    # providers); only a domain that looks mistyped (gmial, hotmal) makes it the same mailbox.
    typo_domain = pairs.equal("email_local") & (pairs.distance("email_domain") <= 2)
    email = _select(~pairs.both("email"), [pairs.equal("email"), typo_domain])

    phone = _select(~pairs.both("phone"), [pairs.equal("phone"), pairs.distance("phone") == 1])

    address = _compare_address(pairs)
    levels = np.stack([first, last, dob, email, phone, address], axis=1)
    # An exact level means the left value equals the (aligned) right one, so the left one is the value.
    exact = {
        "first_name": _where_exact(first, fields.text["first"][left]),
        "last_name": _where_exact(last, fields.text["last"][left]),
    }
    return ComparedPairs(levels, exact, swapped)


def _where_exact(levels: Levels, values: NDArray[np.object_]) -> NDArray[np.object_]:
    out = np.full(len(values), None, dtype=object)
    exact = levels == 0
    out[exact] = values[exact]
    return out


def _compare_dob(a: NDArray[np.float64], b: NDArray[np.float64]) -> Levels:
    present = ~(np.isnan(a) | np.isnan(b))
    da = np.where(present, a, 0).astype("datetime64[D]")
    db = np.where(present, b, 0).astype("datetime64[D]")
    ya, yb = da.astype("datetime64[Y]"), db.astype("datetime64[Y]")
    ma, mb = da.astype("datetime64[M]"), db.astype("datetime64[M]")
    month_a, month_b = (ma - ya).astype(int) + 1, (mb - yb).astype(int) + 1
    day_a, day_b = (da - ma).astype(int) + 1, (db - mb).astype(int) + 1
    swapped = (ya == yb) & (month_a == day_b) & (day_a == month_b)
    return _select(~present, [present & (a == b), present & swapped, present & (np.abs(a - b) <= 365)])


def _compare_address(pairs: _Pairs) -> Levels:
    same_postcode = pairs.equal("postcode")
    same_district = pairs.equal("district")
    close_street = pairs.both("street") & (pairs.similarity("street") >= 0.88)
    same_city = pairs.equal("city")
    comparable = pairs.both("postcode") | pairs.both("street") | pairs.both("district")
    return _select(
        ~comparable,
        [
            same_postcode & close_street,
            same_postcode,
            close_street & (same_city | same_district),
            same_district,
        ],
    )
