"""Emails and phone numbers in their common forms normalised in SQL, the rest left to Python.

A rebuild normalises millions of distinct emails and phone numbers; through Python that is one call
per value (2.6 us for an email, 34 us for a phone number with `phonenumbers`), most of a rebuild's
normalisation time. The common forms are normalised here in SQL instead:

- emails of ASCII characters with one '@': lower-cased, the domain aliased, a '+tag' dropped and
  dots removed where the rules say so, with the same syntax checks as `tailor.identity.emails`;
- phone numbers of digits, spaces and `()-.`, written nationally for the default region
  (07911 123456), with its country code (+44 7911 123456, +44 (0)7911 123456) or its
  international prefix (0044 ...), classified with the default region's own patterns from the
  `phonenumbers` metadata (valid ranges, fixed line or not) exactly as `phonenumbers` does.

Each expression gives the normalised value, or NULL wherever it is not certain to agree with
Python (any other form, any invalid or blocked value, a number of another country): those values,
and so nearly every reason a value is refused, still come from `IdentifierNormaliser`. The one
refusal given here is a phone number in its common form that lies in no allocated range. Blocked patterns
are checked in Python on the values found here (`patterns_ok`), so their regex dialect is Python's.
Tests check the SQL against Python on generated values (tests/identity/test_sql_normalise.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import duckdb
import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberDesc

from tailor.identity.normalise import IdentifierNormaliser

_SPACE = "".join(f"\\x{{{ord(c):x}}}" for c in map(chr, range(0x3001)) if c.isspace())


def trimmed(sql: str) -> str:
    """SQL for a value with what Python's str.strip() removes trimmed from both ends."""
    return f"regexp_replace({sql}, '^[{_SPACE}]+|[{_SPACE}]+$', '', 'g')"


# `tailor.identity.emails._LOCAL` for ASCII text: whitespace and control characters are \x00-\x20.
_LOCAL = r'[^\x00-\x20\x7f@"(),:;<>\[\\\].]+(?:\.[^\x00-\x20\x7f@"(),:;<>\[\\\].]+)*'
_DOMAIN = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})"


def sql_literal(text: str) -> str:
    """A SQL string literal of `text`."""
    return "'" + text.replace("'", "''") + "'"


_lit = sql_literal


def _in(values: Iterable[str]) -> str:
    return "(" + (", ".join(_lit(v) for v in sorted(values)) or "NULL") + ")"


def email_select(normaliser: IdentifierNormaliser, type_name: str, source: str) -> str:
    """SQL selecting each row of `source` (h, id_type, raw) with `f`: {value, type, reason} of its
    normalised email address of type `type_name` (reason NULL), or NULL (see the module text)."""
    rules = normaliser.rules
    blocked = _in(normaliser.blocked_values(type_name))
    aliases = " ".join(
        f"WHEN {_lit(k.lower())} THEN {_lit(v.lower())}"
        for k, v in sorted(rules.email_domain_aliases.items())
    )
    domain = f"CASE domain0 {aliases} ELSE domain0 END" if aliases else "domain0"
    if rules.email_plus_addressing == "all":
        plus = "TRUE"
    elif rules.email_plus_addressing == "listed":
        plus = f"domain IN {_in(d.lower() for d in rules.email_plus_domains)}"
    else:
        plus = "FALSE"
    dotless = _in(d.lower() for d in rules.email_dotless_domains)
    checks = [
        "strlen(t) = length(t)",  # ASCII only: NFKC and case folding change nothing else
        f"length(t) BETWEEN 1 AND {int(rules.max_length)}",
        f"lt NOT IN {blocked}",
        f"regexp_full_match(lt, {_lit(_LOCAL + '@' + _DOMAIN)})",
        "length(local0) <= 64",
        "length(domain0) <= 253",
        f"regexp_full_match(local1, {_lit(_LOCAL)})",
        f"value NOT IN {blocked}",
    ]
    return f"""SELECT h, id_type, raw,
        CASE WHEN {" AND ".join(checks)}
             THEN {{'value': value, 'type': {_lit(type_name)}, 'reason': NULL::VARCHAR}} END AS f
    FROM (SELECT *, local2 || '@' || domain AS value
    FROM (SELECT *, CASE WHEN domain IN {dotless} THEN replace(local1, '.', '') ELSE local1 END AS local2
    FROM (SELECT *, CASE WHEN {plus} THEN split_part(local0, '+', 1) ELSE local0 END AS local1
    FROM (SELECT *, {domain} AS domain
    FROM (SELECT *, split_part(lt, '@', 1) AS local0, split_part(lt, '@', 2) AS domain0
    FROM (SELECT *, lower(t) AS lt
    FROM (SELECT h, id_type, raw, {trimmed("raw")} AS t FROM {source})))))))"""


def _desc(metadata: PhoneMetadata, name: str, national: str) -> str:
    """SQL for phonenumbers' `_is_number_matching_desc(national, metadata.<name>)`."""
    desc = getattr(metadata, name)
    if desc is None or not desc.national_number_pattern:
        return "FALSE"
    length = f"length({national}) IN ({', '.join(map(str, desc.possible_length))})"
    match = f"regexp_full_match({national}, {_lit(desc.national_number_pattern)})"
    return f"({length} AND {match})" if desc.possible_length else match


_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail")


@dataclass(frozen=True)
class _Region:
    """What parsing a region's numbers needs, for a region whose numbers can be parsed in SQL."""

    metadata: PhoneMetadata
    cc: str
    national_prefix: str
    prefix_pattern: str
    idd: str
    general: PhoneNumberDesc
    regions: tuple[str, ...]
    """Every region of the country code, the main one first."""


def _simple_region(region: str) -> _Region | None:
    """The region's parsing rules when its numbers can be parsed here, else None."""
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None or metadata.country_code is None or metadata.general_desc is None:
        return None
    np, npp = metadata.national_prefix, metadata.national_prefix_for_parsing
    idd, general = metadata.international_prefix, metadata.general_desc
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(metadata.country_code, ())
    if not regions or regions[0] != region or metadata.leading_digits is not None:
        return None  # another region of the same code is tried first
    if not np or not np.isdigit() or metadata.national_prefix_transform_rule:
        return None
    if npp is not None and npp != np and not npp.startswith(np + "|"):
        return None
    if not idd or not idd.isdigit() or not general.national_number_pattern or not general.possible_length:
        return None
    return _Region(metadata, str(metadata.country_code), np, npp or np, idd, general, tuple(regions))


def phone_select(normaliser: IdentifierNormaliser, source: str) -> str | None:
    """SQL selecting each row of `source` (h, id_type, raw) with `f`: {value, type, reason} of its phone
    number of the default region, or NULL (see the module text); None when no form can be parsed.

    A number that parses here but lies in no allocated range of its country code is refused with
    `phonenumbers`' verdict (`tailor.identity.phones`): half of a log's mistyped numbers are such.
    """
    rules = normaliser.rules
    region = _simple_region(rules.default_region)
    if region is None or rules.phone_validity != "valid":
        return None
    cc, np, npp, idd = region.cc, region.national_prefix, region.prefix_pattern, region.idd
    general = region.general
    blocked = _in(normaliser.blocked_values("phone"))
    # The national number as written, after a '+' and the country code, an international prefix
    # and the country code, or nothing (a national number that does not begin with the code).
    written = f"""CASE
        WHEN starts_with(digits, '+{cc}') THEN substr(digits, {len(cc) + 2})
        WHEN starts_with(digits, '+') THEN NULL
        WHEN starts_with(digits, '{idd}{cc}') THEN substr(digits, {len(idd) + len(cc) + 1})
        WHEN starts_with(digits, '{idd}') OR starts_with(digits, '{cc}') THEN NULL
        ELSE digits END"""
    # The number's type under each region of the country code, then phonenumbers' choice among them
    # (`_region_code_for_number_from_list`): the first region whose leading digits it starts with,
    # or, for a region without leading digits, under which it is of a known type.
    regions = [PhoneMetadata.metadata_for_region(r, None) for r in region.regions]
    kinds = [_kind_sql(m, rules.link_fixed_lines) for m in regions if m is not None]
    choice = []
    for i, m in enumerate(m for m in regions if m is not None):
        if m.leading_digits is not None:
            choice.append(
                f"WHEN regexp_matches(national, {_lit('^(?:' + m.leading_digits + ')')}) THEN kind{i}"
            )
        else:
            choice.append(f"WHEN kind{i} IS NOT NULL THEN kind{i}")
    by_region = ", ".join(f"{k} AS kind{i}" for i, k in enumerate(kinds))
    local_only = ", ".join(map(str, general.possible_length_local_only)) or "NULL"
    parsable = [
        "regexp_full_match(t, '\\(?\\+?[0-9][0-9 ().-]*')",
        f"length(t) BETWEEN 1 AND {min(250, int(rules.max_length))}",
        f"lower(t) NOT IN {blocked}",
        "written IS NOT NULL",
        # Where the national prefix is written, phonenumbers drops it only when the number
        # without it has a possible length, and the number with it is not valid as it stands.
        f"(prefix OR NOT regexp_matches(written, {_lit('^(?:' + npp + ')')}))",
        f"NOT (prefix AND regexp_full_match(written, {_lit(general.national_number_pattern or '')}))",
        f"length(national) IN ({', '.join(map(str, general.possible_length))})",
        f"length(national) NOT IN ({local_only})",
        "NOT starts_with(national, '0')",
    ]
    where = phonenumbers.region_code_for_country_code(int(cc))
    unallocated = _lit(f"invalid: not a number in an allocated range of {where} (+{cc})")
    return f"""SELECT h, id_type, raw,
        CASE WHEN kind IS NOT NULL AND '+{cc}' || national NOT IN {blocked}
             THEN {{'value': '+{cc}' || national, 'type': kind, 'reason': NULL::VARCHAR}}
             WHEN ok AND kind IS NULL
             THEN {{'value': NULL::VARCHAR, 'type': NULL::VARCHAR, 'reason': {unallocated}}}
        END AS f
    FROM (SELECT *, CASE WHEN ok THEN CASE {" ".join(choice)} END END AS kind
    FROM (SELECT *, {by_region}
    FROM (SELECT *, coalesce({" AND ".join(parsable)}, FALSE) AS ok
    FROM (SELECT *, CASE WHEN prefix THEN substr(written, {len(np) + 1}) ELSE written END AS national
    FROM (SELECT *, starts_with(written, '{np}') AS prefix
    FROM (SELECT *, {written} AS written
    FROM (SELECT *, regexp_replace(t, '[ ().-]', '', 'g') AS digits
    FROM (SELECT h, id_type, raw, {trimmed("raw")} AS t FROM {source}))))))))"""


def _kind_sql(metadata: PhoneMetadata, link_fixed_lines: bool) -> str:
    """SQL for phonenumbers' `_number_type_helper(national, metadata)`: 'phone', 'landline' or NULL."""
    kinds = [f"WHEN NOT {_desc(metadata, 'general_desc', 'national')} THEN NULL"]
    kinds += [f"WHEN {_desc(metadata, name, 'national')} THEN 'phone'" for name in _TYPES]
    fixed = _desc(metadata, "fixed_line", "national")
    mobile = _desc(metadata, "mobile", "national")
    landline = "'phone'" if link_fixed_lines else "'landline'"
    if metadata.same_mobile_and_fixed_line_pattern:
        kinds.append(f"WHEN {fixed} THEN 'phone'")
    else:
        kinds.append(f"WHEN {fixed} THEN CASE WHEN {mobile} THEN 'phone' ELSE {landline} END")
        kinds.append(f"WHEN {mobile} THEN 'phone'")
    return "CASE " + " ".join(kinds) + " END"


@cache
def usable(select: str) -> bool:
    """Whether DuckDB runs a select over `{source}` (all its regexes compile in RE2)."""
    con = duckdb.connect()
    try:
        source = "(SELECT 0 AS h, 'phone' AS id_type, '07911 123456' AS raw)"
        con.execute(select.replace("{source}", source)).fetchall()
    except duckdb.Error:
        return False
    finally:
        con.close()
    return True


def patterns_ok(normaliser: IdentifierNormaliser, types: list[str], values: list[str | None]) -> list[bool]:
    """For each value of a type, whether none of the type's blocked patterns is found in it."""
    compiled = {t: tuple(re.compile(p) for p in normaliser.blocked_patterns(t)) for t in set(types)}
    return [
        v is None or not any(p.search(v) for p in compiled[t]) for t, v in zip(types, values, strict=True)
    ]
