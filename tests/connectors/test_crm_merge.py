"""The three-way merge of one field, property-based: one-sided changes win, rules decide, nothing echoes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailor.connectors.crm.merge import Action, Base, TailorValue, canonical, merge

OWN = "postgres:crm"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
values = st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))
owners = st.sampled_from(["crm", "tailor", "latest"])


@st.composite
def situations(draw: st.DrawFn) -> tuple[str, str | None, datetime, TailorValue | None, Base | None]:
    owner = draw(owners)
    base = draw(st.one_of(st.none(), st.builds(Base, values, st.integers(-1, 5))))
    tailor = draw(
        st.one_of(
            st.none(),
            st.builds(
                TailorValue,
                st.sampled_from(["a", "b", "c"]),
                st.integers(0, 10),
                st.integers(0, 100).map(lambda m: T0 + timedelta(minutes=m)),
                st.sampled_from([OWN, "web"]),
            ),
        )
    )
    crm_at = T0 + timedelta(minutes=draw(st.integers(0, 100)))
    return owner, draw(values), crm_at, tailor, base


@given(situations())
def test_applying_a_decision_leaves_nothing_to_do_next_cycle(
    s: tuple[str, str | None, datetime, TailorValue | None, Base | None],
) -> None:
    owner, crm, crm_at, tailor, base = s
    d = merge(owner, crm, crm_at, tailor, base, OWN)  # type: ignore[arg-type]
    if d.action is Action.NOTHING:
        return
    new_base = Base(d.value, d.tailor_seq)
    if d.action is Action.TO_CRM:
        crm = d.value
    elif d.action is Action.TO_TAILOR and crm is not None:
        # Tailor stores the CRM's value as an observation of the sync's own source (or keeps
        # another value by survivorship); either way it is no Tailor change next time.
        tailor = TailorValue(crm, d.tailor_seq + 1, crm_at, OWN)
    again = merge(owner, crm, crm_at, tailor, new_base, OWN)  # type: ignore[arg-type]
    assert again.action in (Action.NOTHING, Action.AGREE)
    assert again.value == d.value
    third = merge(owner, crm, crm_at, tailor, Base(again.value, again.tailor_seq), OWN)  # type: ignore[arg-type]
    assert third.action is Action.NOTHING


@given(owners, values, values, values)
def test_a_change_on_one_side_only_wins_whatever_the_rule(
    owner: str, agreed: str | None, crm_new: str | None, tailor_new: str | None
) -> None:
    base = Base(agreed, 3)
    unchanged = None if agreed is None else TailorValue(agreed, 3, T0, "web")
    if crm_new != agreed:
        d = merge(owner, crm_new, T0, unchanged, base, OWN)  # type: ignore[arg-type]
        assert (d.action, d.value, d.conflict) == (Action.TO_TAILOR, crm_new, False)
    if tailor_new is not None and tailor_new != agreed:
        d = merge(owner, agreed, T0, TailorValue(tailor_new, 4, T0, "web"), base, OWN)  # type: ignore[arg-type]
        assert (d.action, d.value, d.conflict) == (Action.TO_CRM, tailor_new, False)


def test_both_changed_the_rule_decides() -> None:
    base = Base("old", 3)
    tailor = TailorValue("mine", 4, T0 + timedelta(minutes=5), "web")
    early, late = T0, T0 + timedelta(minutes=10)
    assert merge("crm", "theirs", early, tailor, base, OWN).action is Action.TO_TAILOR
    assert merge("tailor", "theirs", late, tailor, base, OWN).action is Action.TO_CRM
    assert merge("latest", "theirs", late, tailor, base, OWN).action is Action.TO_TAILOR
    assert merge("latest", "theirs", early, tailor, base, OWN).action is Action.TO_CRM
    assert merge("latest", "theirs", late, tailor, base, OWN).conflict
    same = merge("tailor", "mine", late, tailor, base, OWN)
    assert (same.action, same.conflict) == (Action.AGREE, False)


def test_the_syncs_own_values_and_unapplied_imports_are_no_tailor_change() -> None:
    base = Base("crm-new", 3)
    # The processor has not applied the import yet: Tailor still shows the old value it had at seq 3.
    assert (
        merge("tailor", "crm-new", T0, TailorValue("old", 3, T0, "web"), base, OWN).action is Action.NOTHING
    )
    # An older CRM value Tailor took from the CRM itself is no Tailor change either.
    assert (
        merge("tailor", "crm-new", T0, TailorValue("crm-old", 9, T0, OWN), base, OWN).action is Action.AGREE
    )


@pytest.mark.parametrize(
    ("value", "type_", "expected"),
    [
        (" Ana ", "string", "Ana"),
        ("", "string", None),
        ("12.50", "number", "12.5"),
        (12, "number", "12"),
        ("12.0", "integer", "12"),
        (1, "boolean", "true"),
        ("no", "boolean", "false"),
        (True, "boolean", "true"),
    ],
)
def test_canonical_values_compare_across_engines(value: object, type_: str, expected: str | None) -> None:
    assert canonical(value, type_) == expected


@pytest.mark.parametrize(("value", "type_"), [("forty", "integer"), ("1.5", "integer"), ("maybe", "boolean")])
def test_a_value_not_of_its_type_is_an_error(value: str, type_: str) -> None:
    with pytest.raises(ValueError, match=repr(value)):
        canonical(value, type_)
