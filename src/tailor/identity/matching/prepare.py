"""Records to the normalised fields the matcher compares: names, date of birth, email, phone, address."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import pyarrow as pa
from phonenumbers import PhoneMetadata

from tailor.identity.matching.columns import ColumnType, recognise_columns
from tailor.identity.matching.exceptions import ColumnError
from tailor.identity.names import normalise_name
from tailor.identity.normalise import IdentifierNormaliser, default_normaliser

FIELDS: tuple[str, ...] = ("first", "last", "initial", "dob", "email", "email_local", "phone", "postcode")
FIELDS += ("district", "street", "city")
"""The prepared fields, in the order of the prepared table's columns after `id`."""

MAX_VALUE_LENGTH = 1_000
"""Longer values are not names, dates or addresses: they are refused with a reason."""

_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "rev", "lady", "lord"})
_STREET_WORDS = {
    "rd": "road",
    "st": "street",
    "ave": "avenue",
    "av": "avenue",
    "ln": "lane",
    "dr": "drive",
    "cl": "close",
    "ct": "court",
    "pl": "place",
    "sq": "square",
    "cres": "crescent",
    "gdns": "gardens",
    "flat": "",
    "apt": "",
}
_DATE_FORMATS = (
    re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"),
    re.compile(r"(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})"),
    re.compile(r"(?P<d>\d{1,2})[/.-](?P<m>\d{1,2})[/.-](?P<y>\d{4})"),
)
_EPOCH = date(1970, 1, 1).toordinal()
_PHONE_TEXT = re.compile(r"[+\d\s().-]+")
_NOT_PHONE_DIGIT = re.compile(r"[^\d+]")
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
_PLACEHOLDER_DATES = frozenset({date(1900, 1, 1), date(1901, 1, 1), date(1970, 1, 1)})

Outcome = tuple[str | None, str | None]


@dataclass(frozen=True)
class ValueProblem:
    """A value that could not be used for matching: which record, which column and why."""

    row: int
    """Position of the record in the table it came from (0-based)."""
    column: str
    """The source column."""
    reason: str


@dataclass(frozen=True)
class PreparedRecords:
    """Records as the matcher sees them: an `id` column and one column per prepared field."""

    table: pa.Table
    problems: list[ValueProblem] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @property
    def ids(self) -> list[str]:
        """The record ids, in order."""
        ids: list[str] = self.table.column("id").to_pylist()
        return ids

    def column(self, name: str) -> list[object]:
        """One prepared field as a Python list, None where missing."""
        values: list[object] = self.table.column(name).to_pylist()
        return values

    def concat(self, other: PreparedRecords) -> PreparedRecords:
        """These records followed by `other` (problem rows of `other` are shifted accordingly)."""
        shifted = [ValueProblem(p.row + len(self), p.column, p.reason) for p in other.problems]
        return PreparedRecords(pa.concat_tables([self.table, other.table]), self.problems + shifted)


def _usable(reason: str | None) -> bool:
    return reason is None or reason.startswith("missing") or reason == "blocked: empty value"


def _split_full_name(text: str) -> tuple[str, str]:
    """A written full name as (first, last): titles dropped, "Last, First" understood."""
    if "," in text:
        last, _, first = text.partition(",")
        return first.strip(), last.strip()
    tokens = text.replace(".", ". ").split()
    had_title = bool(tokens) and tokens[0].lower().rstrip(".") in _TITLES
    if had_title:
        tokens = tokens[1:]
    if not tokens:
        return "", ""
    if len(tokens) == 1:
        # "Mrs Hale" names the family; a lone "Anna" (how agents note a caller) the person.
        return ("", tokens[0]) if had_title else (tokens[0], "")
    return tokens[0], tokens[-1]


@lru_cache(maxsize=65_536)
def parse_dob(text: str) -> tuple[int | None, str | None]:
    """A date of birth as (days since 1970-01-01, None), or (None, why it is not usable)."""
    text = text.strip()
    if not text:
        return None, None
    for pattern in _DATE_FORMATS:
        found = (
            pattern.fullmatch(text[:10]) if len(text) > 10 and text[10] in " T" else pattern.fullmatch(text)
        )
        if found:
            try:
                born = date(int(found["y"]), int(found["m"]), int(found["d"]))
            except ValueError:
                return None, f"invalid: {text!r} is not a calendar date"
            if born in _PLACEHOLDER_DATES:
                return None, f"blocked: {text!r} is a placeholder date"
            if not 1880 <= born.year <= date.today().year:
                return None, f"invalid: {text!r} is not a plausible date of birth"
            return born.toordinal() - _EPOCH, None
    return None, f"invalid: {text!r} is not a date (expected YYYY-MM-DD or DD/MM/YYYY)"


def _postcode(text: str) -> Outcome:
    code = _NOT_ALNUM.sub("", text.upper())
    if not code:
        return None, None
    if not 3 <= len(code) <= 10 or not any(c.isdigit() for c in code):
        return None, f"invalid: {text!r} is not a postcode"
    return code, None


def phone_key(region: str) -> Callable[[str], str]:
    """A function that writes a phone number the way phone parsing reads it: '+' and digits only.

    The same number is written in many ways ("07700 900123", "(07700) 900-123", "0044 7700
    900123", "+44 (0)7700 900123"); parsing is the costliest step of preparing records, so each
    number should be parsed once, not once per way of writing it. Parsing ignores spaces, dots,
    dashes and brackets, and reads the region's international prefix ("00") as '+', so dropping
    and replacing them changes nothing but the number of distinct texts. Text with anything else
    in it (letters of an extension, say) is only trimmed.
    """
    metadata = PhoneMetadata.metadata_for_region(region)
    prefix = metadata.international_prefix if metadata is not None else None
    plain_prefix = prefix if prefix is not None and prefix.isdigit() else None

    def key(text: str) -> str:
        text = text.strip()
        if not _PHONE_TEXT.fullmatch(text):
            return text
        digits = _NOT_PHONE_DIGIT.sub("", text)
        if plain_prefix is not None and digits.startswith(plain_prefix):
            return "+" + digits[len(plain_prefix) :]
        return digits

    return key


def _street(text: str) -> Outcome:
    key, reason = normalise_name(text.replace("/", " "))
    if key is None:
        return None, reason
    words = [_STREET_WORDS.get(w, w) for w in key.split()]
    return " ".join(w for w in words if w) or None, None


class _Column:
    """Applies one normaliser to the distinct values of a source column, gathering the problems."""

    def __init__(self, name: str | None, values: Sequence[str | None], problems: list[ValueProblem]) -> None:
        self.name = name
        self.values = values
        self.problems = problems

    def map(self, fn: Callable[[str], Outcome], key: Callable[[str], str] = str.strip) -> list[str | None]:
        """`fn` of each value, computed once per distinct `key` of the values (trimmed text by default)."""
        seen: dict[str, Outcome] = {}
        out: list[str | None] = []
        for row, raw in enumerate(self.values):
            if raw is None or not raw.strip():
                out.append(None)
                continue
            outcome: Outcome
            if len(raw) > MAX_VALUE_LENGTH:
                outcome = (None, f"too long: {len(raw)} characters, at most {MAX_VALUE_LENGTH}")
            else:
                text = key(raw)
                known = seen.get(text)
                outcome = known if known is not None else seen.setdefault(text, fn(text))
            out.append(outcome[0])
            if not _usable(outcome[1]):
                self.problems.append(ValueProblem(row, self.name or "?", outcome[1] or ""))
        return out


def _source(table: pa.Table, columns: Mapping[ColumnType, str], kind: ColumnType) -> list[str | None]:
    name = columns.get(kind)
    if name is None:
        return [None] * table.num_rows
    values: list[str | None] = table.column(name).cast(pa.string()).to_pylist()
    return values


def prepare_records(
    table: pa.Table,
    id_column: str,
    columns: Mapping[ColumnType, str] | None = None,
    normaliser: IdentifierNormaliser | None = None,
) -> PreparedRecords:
    """A table of records (any columns) prepared for matching; `columns` defaults to recognised headers."""
    if id_column not in table.column_names:
        raise ColumnError(f"no id column {id_column!r}; columns are: {', '.join(table.column_names)}")
    columns = recognise_columns(table.column_names, columns, id_column=id_column)
    norm = normaliser or default_normaliser()
    problems: list[ValueProblem] = []

    def column(kind: ColumnType) -> _Column:
        return _Column(columns.get(kind), _source(table, columns, kind), problems)

    def name_key(text: str) -> Outcome:
        value = norm.normalise("name", text)
        return value.value, value.reason

    def identifier(kind: str) -> Callable[[str], Outcome]:
        def one(text: str) -> Outcome:
            value = norm.normalise(kind, text)
            return value.value, value.reason

        return one

    first = column(ColumnType.FIRST_NAME).map(name_key)
    last = column(ColumnType.LAST_NAME).map(name_key)
    full = column(ColumnType.FULL_NAME)
    if full.name is not None:
        split = [_split_full_name(v) if v else ("", "") for v in full.values]
        from_full_first = _Column(full.name, [f for f, _ in split], problems).map(name_key)
        from_full_last = _Column(full.name, [s for _, s in split], problems).map(name_key)
        first = [f if f is not None else g for f, g in zip(first, from_full_first, strict=True)]
        last = [f if f is not None else g for f, g in zip(last, from_full_last, strict=True)]
    initial = [f[0] if f else None for f in first]
    # "J. Smith" gives only an initial: it is kept as the initial, not as a first name.
    first = [None if f is not None and len(f) == 1 else f for f in first]

    dob_column = column(ColumnType.DOB)
    dob: list[int | None] = []
    for row, raw in enumerate(dob_column.values):
        days, reason = (None, None) if raw is None else parse_dob(raw[: MAX_VALUE_LENGTH + 1])
        dob.append(days)
        if reason is not None and not reason.startswith("missing"):
            problems.append(ValueProblem(row, dob_column.name or "?", reason))

    email = column(ColumnType.EMAIL).map(identifier("email"))
    postcode = column(ColumnType.POSTCODE).map(_postcode)
    data = {
        "id": pa.array(table.column(id_column).cast(pa.string()).to_pylist(), pa.string()),
        "first": pa.array(first, pa.string()),
        "last": pa.array(last, pa.string()),
        "initial": pa.array(initial, pa.string()),
        "dob": pa.array(dob, pa.int32()),
        "email": pa.array(email, pa.string()),
        "email_local": pa.array([e.rpartition("@")[0] if e else None for e in email], pa.string()),
        "phone": pa.array(
            column(ColumnType.PHONE).map(identifier("phone"), phone_key(norm.rules.default_region)),
            pa.string(),
        ),
        "postcode": pa.array(postcode, pa.string()),
        "district": pa.array([p[:-3] if p and len(p) >= 5 else None for p in postcode], pa.string()),
        "street": pa.array(column(ColumnType.ADDRESS).map(_street), pa.string()),
        "city": pa.array(column(ColumnType.CITY).map(name_key), pa.string()),
    }
    problems.sort(key=lambda p: p.row)
    return PreparedRecords(pa.table(data), problems)
