"""Scoring the identity graph against a ground truth of which identifiers belong to which person.

Pairwise scores count pairs of identifiers: a pair is predicted when both are in one profile, and
true when both belong to one person. Identifiers the truth gives to several people (a family's
shared tablet) and those it does not know are left out. A profile is over-merged when it holds
identifiers of two or more people; a person is split when their identifiers are spread over
several profiles.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from tailor.identity.normalise import IdentifierNormaliser, default_normaliser
from tailor.store.database import Database

SCORED_TYPES = ("user_id", "anonymous_id", "device_id", "email", "phone", "crm_id", "record")


@dataclass(frozen=True)
class IdentityScore:
    """How the profiles compare with the truth."""

    identifiers: int
    persons: int
    profiles: int
    precision: float
    recall: float
    f1: float
    over_merged_profiles: int
    split_persons: int


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def score_profiles(
    db: Database, truth: Iterable[tuple[str, str, str]], normaliser: IdentifierNormaliser | None = None
) -> IdentityScore:
    """Scores the stored profiles against (type, raw value, person) rows of a ground truth."""
    normaliser = normaliser or default_normaliser()
    persons: dict[tuple[str, str], set[str]] = defaultdict(set)
    for kind, raw, person in truth:
        if kind in SCORED_TYPES:
            value = normaliser.normalise(kind, raw).value
            if value is not None:
                persons[kind, value].add(person)
    profile_of = {
        (t, v): p for t, v, p in db.execute("SELECT type, value, profile_id FROM identity_profiles")
    }
    scored = [
        (key, next(iter(who)), profile_of[key])
        for key, who in persons.items()
        if len(who) == 1 and key in profile_of
    ]
    by_profile = Counter(profile for _, _, profile in scored)
    by_person = Counter(person for _, person, _ in scored)
    by_both = Counter((profile, person) for _, person, profile in scored)
    true_positive = sum(_pairs(n) for n in by_both.values())
    predicted = sum(_pairs(n) for n in by_profile.values())
    actual = sum(_pairs(n) for n in by_person.values())
    precision = true_positive / predicted if predicted else 1.0
    recall = true_positive / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    persons_in: dict[str, set[str]] = defaultdict(set)
    profiles_of: dict[str, set[str]] = defaultdict(set)
    for profile, person in by_both:
        persons_in[profile].add(person)
        profiles_of[person].add(profile)
    return IdentityScore(
        identifiers=len(scored),
        persons=len(by_person),
        profiles=len(by_profile),
        precision=precision,
        recall=recall,
        f1=f1,
        over_merged_profiles=sum(len(p) > 1 for p in persons_in.values()),
        split_persons=sum(len(p) > 1 for p in profiles_of.values()),
    )
